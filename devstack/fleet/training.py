"""TrainingKubelet: the emulator process's kubelet with `--run-training WORKDIR`. The Pods of the training
image (a retraining Job's) run as real processes, as ProcessKubelet runs them; every other Pod is
simulated, as SimulatedKubelet does (for tests whose trading pods stand in for the runtime but whose
retraining Jobs must really train)."""

from __future__ import annotations

import pathlib

from devstack.emulator.events import EventRecorder
from devstack.emulator.kubelet import PodWorker, SimulatedKubelet
from devstack.emulator.objects import Objects
from devstack.fleet.images import MODELOPS, image_for
from devstack.fleet.kubelet import ProcessKubelet


class TrainingKubelet(ProcessKubelet):
    def __init__(self, workdir: pathlib.Path, ready_delay: float = 0.05) -> None:
        super().__init__(workdir)
        self.simulated = SimulatedKubelet(ready_delay)
        self.simulated.node_name = self.node_name

    def attach(self, objects: Objects, recorder: EventRecorder) -> None:
        super().attach(objects, recorder)
        self.simulated.attach(objects, recorder)

    @staticmethod
    def trains(worker: PodWorker) -> bool:
        images = [str(c.get("image", "")) for c in worker.spec_containers()]
        return bool(images) and all(image_for(image) is MODELOPS for image in images)

    async def run_pod(self, worker: PodWorker) -> None:
        if self.trains(worker):
            await super().run_pod(worker)
        else:
            await self.simulated.run_pod(worker)

    async def cleanup_pod(self, worker: PodWorker) -> None:
        await super().cleanup_pod(worker)
        await self.simulated.cleanup_pod(worker)
