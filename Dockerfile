# One image for Synapse (main process and workers), the router and every Mercato
# component, so production runs the same pinned versions `make test` runs. Built by
# docker-compose.yml; see docs/operator-guide.md.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
# psycopg2 (Synapse's PostgreSQL driver) builds against libpq.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev libpq-dev \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /app
# Only what the network runs: no .venv, data/ or a local mercato.yaml with its secrets.
COPY pyproject.toml ./
COPY mercato/ mercato/
COPY mercato_ops/ mercato_ops/
COPY appservices/ appservices/
COPY bots/ bots/
COPY bridges/ bridges/
COPY homeserver-config/ homeserver-config/
# Editable, because mercato_ops/render.py reads homeserver-config/ next to the package.
# pyproject.toml pins Synapse with the extras the scale profile needs: postgres
# (psycopg2) and redis (replication between the main process and the workers).
RUN pip install -e .

FROM ${PYTHON_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq5 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 1000 --user-group --no-create-home --home-dir /data mercato \
    && mkdir -p /data /config \
    && chown mercato:mercato /data
# Same paths as in the build stage: the venv and the editable install point at them.
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 MERCATO_CONFIG=/config/mercato.yaml
USER mercato
WORKDIR /data
# synapse.port (the router's in the scale profile), commerce, contacts, shopbot
# (the defaults in mercato/config.py); Synapse's own processes listen on loopback only.
EXPOSE 8008 8090 8091 8092
CMD ["mercato", "--help"]
