# One image for every hub process; docker-compose.yml picks the command.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HUB_VAR_DIR=/var/lib/hub
WORKDIR /app
COPY pyproject.toml README.md ./
COPY hub ./hub
COPY workers ./workers
COPY web ./web
COPY migrations ./migrations
RUN pip install --no-cache-dir -e . Babel && pybabel compile -d web/translations && useradd --system --home /var/lib/hub hub && mkdir -p /var/lib/hub && chown hub /var/lib/hub
USER hub
EXPOSE 5000 5555
CMD ["hub", "web"]
