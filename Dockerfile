# Production image: the web app (gunicorn) and the Celery worker share it.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 VIRTUAL_ENV=/app/.venv PATH=/app/.venv/bin:$PATH
# bubblewrap and slirp4netns: the sandbox around every Terraform process (docs/security.md).
RUN apt-get update && apt-get install -y --no-install-recommends git bubblewrap slirp4netns \
    && rm -rf /var/lib/apt/lists/*
# The portal runs as its own unprivileged user, never as root: what it writes lives in DATA_DIR
# (/data in docker-compose.yml, /app/var by default), owned by that user; the code is not.
RUN groupadd --system --gid 10001 portal \
    && useradd --system --uid 10001 --gid portal --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin portal
WORKDIR /app
COPY pyproject.toml README.md ./
COPY requirements ./requirements
# Every Python package the wheel holds (tests/test_production_image.py checks the list).
COPY changecontrol ./changecontrol
COPY deployments ./deployments
COPY notifications ./notifications
COPY templates ./templates
COPY static ./static
COPY sample_stack ./sample_stack
COPY manage.py ./
RUN python -m venv /app/.venv && pip install --no-cache-dir . \
    && DATA_DIR=/tmp/build SECRET_KEY=build python manage.py install_terraform \
    && rm -rf /tmp/build \
    && mkdir -p /data /app/var && chown portal:portal /data /app/var
USER 10001:10001
EXPOSE 8000
CMD ["gunicorn", "changecontrol.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "4"]
