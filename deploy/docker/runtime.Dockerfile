# The trading runtime image (one process per TradingSymbol; only the runtime's extra): non-root, read-only root filesystem friendly
# (writes only to /tmp, an emptyDir). Build from the repository root:
#   docker build -f deploy/docker/runtime.Dockerfile -t tradeops-runtime .
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY trading_runtime ./trading_runtime
RUN pip install --no-cache-dir --prefix=/install ".[runtime]"

FROM python:3.11-slim
COPY --from=build /install /usr/local
RUN groupadd --system --gid 10001 tradeops && useradd --system --uid 10001 --gid 10001 --no-create-home tradeops
USER 10001:10001
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 TRADEOPS_SPILL_PATH=/tmp/tradeops-spill.jsonl
EXPOSE 9102
ENTRYPOINT ["python", "-m", "trading_runtime"]
CMD ["--config", "/etc/tradeops/runtime.yaml", "--switches", "/etc/tradeops/switches.yaml"]
