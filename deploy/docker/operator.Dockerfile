# The tradeops operator image: kopf, non-root, read-only root filesystem friendly. Only the operator's extra
# (kopf, the Kubernetes client, Prometheus queries, the policies): the scheduled jobs (backups, drills, the
# audit recorder, the reports) run the tools image, the trading pods the runtime image.
# Build from the repository root: docker build -f deploy/docker/operator.Dockerfile -t tradeops-operator .
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY policies ./policies
COPY trading_operator ./trading_operator
COPY trading_runtime ./trading_runtime
RUN pip install --no-cache-dir --prefix=/install ".[operator]"

FROM python:3.11-slim
COPY --from=build /install /usr/local
RUN groupadd --system --gid 10001 tradeops && useradd --system --uid 10001 --gid 10001 --no-create-home tradeops
USER 10001:10001
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
EXPOSE 8080
ENTRYPOINT ["python", "-m", "trading_operator"]
CMD ["--liveness", "http://0.0.0.0:8080/healthz"]
