# Production image: the web app (gunicorn) and the Celery worker share it.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 VIRTUAL_ENV=/app/.venv PATH=/app/.venv/bin:$PATH
RUN apt-get update && apt-get install -y --no-install-recommends git bubblewrap slirp4netns \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY requirements ./requirements
COPY changecontrol ./changecontrol
COPY deployments ./deployments
COPY templates ./templates
COPY static ./static
COPY sample_stack ./sample_stack
COPY manage.py ./
RUN python -m venv /app/.venv && pip install --no-cache-dir . \
    && DATA_DIR=/tmp/build SECRET_KEY=build python manage.py install_terraform \
    && rm -rf /tmp/build
EXPOSE 8000
CMD ["gunicorn", "changecontrol.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "4"]
