# The training image (modelops/ with the `ml` extra: LightGBM, scikit-learn, ONNX export, MLflow): what the
# operator's retraining Job runs (`python -m modelops train`, trading_operator/retraining.py) and what
# `python -m modelops train` needs anywhere else. Non-root; MLflow and matplotlib write only under /tmp.
# Build from the repository root:
#   docker build -f deploy/docker/modelops.Dockerfile -t tradeops-modelops .
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY backtest ./backtest
COPY modelops ./modelops
COPY trading_runtime ./trading_runtime
RUN pip install --no-cache-dir --prefix=/install ".[ml]"

FROM python:3.11-slim
# LightGBM loads the OpenMP runtime.
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 && rm -rf /var/lib/apt/lists/*
COPY --from=build /install /usr/local
RUN groupadd --system --gid 10001 tradeops && useradd --system --uid 10001 --gid 10001 --no-create-home tradeops
USER 10001:10001
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/tmp MPLCONFIGDIR=/tmp/matplotlib
ENTRYPOINT ["python", "-m", "modelops"]
CMD ["train", "--help"]
