"""Pulumi entry point (`pulumi up -C infra -s dev|prod`): settings from the stack's config, then the program."""

import pulumi

from infra import settings, stack

for name, value in stack.build(settings.load()).items():
    pulumi.export(name, value)
