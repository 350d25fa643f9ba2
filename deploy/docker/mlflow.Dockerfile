# The MLflow tracking server and model registry of a cluster (infra/mlflow_tracking.py): mlflow at the version
# the ml extra trains and registers with, psycopg2 for its PostgreSQL backend store and boto3 for the S3
# artifacts it proxies (the upstream ghcr.io/mlflow/mlflow image has neither). Non-root; the server writes
# only under /tmp (HOME, an emptyDir in its pod). Build from the repository root:
#   docker build -f deploy/docker/mlflow.Dockerfile -t tradeops-mlflow .
FROM python:3.11-slim AS build
RUN pip install --no-cache-dir --prefix=/install "mlflow==3.17.2" "psycopg2-binary==2.9.10" "boto3>=1.35,<2"

FROM python:3.11-slim
COPY --from=build /install /usr/local
RUN groupadd --system --gid 10001 tradeops && useradd --system --uid 10001 --gid 10001 --no-create-home tradeops
USER 10001:10001
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/tmp MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false
EXPOSE 5000
ENTRYPOINT ["mlflow"]
