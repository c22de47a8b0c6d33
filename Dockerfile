# syntax=docker/dockerfile:1
# The Portcullis service image: the bundled build (dist/: service and CLI, the masking core's wasm, the protos) on
# Node's current LTS, run as the unprivileged `node` user. No TypeScript compiler or bundler in it.
#   docker build -t portcullis .
#   docker run --rm -e REDIS_URL=redis://:PASSWORD@redis:6379 -p 50051:50051 -p 8081:8081 portcullis
ARG NODE_IMAGE=node:24-bookworm-slim

# Build: every dependency, then the masking core (AssemblyScript) and the bundle (esbuild).
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
RUN node wasm-filter/build.mjs && node scripts/build.mjs

# Run-time dependencies only (no install scripts run: none of them needs one).
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    PORTCULLIS_CONFIG=/etc/portcullis/portcullis.yaml
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin/ ./bin/
COPY --from=build /src/dist/ ./dist/
COPY deploy/image/portcullis.yaml /etc/portcullis/portcullis.yaml
RUN mkdir -p /var/lib/portcullis && chown node:node /var/lib/portcullis \
    && ln -s /app/bin/portcullis.js /usr/local/bin/portcullis
VOLUME /var/lib/portcullis
USER node
# 50051 gRPC for Envoy (ext_proc, grpc.health.v1), 8081 admin API, 9464 Prometheus metrics.
EXPOSE 50051 8081 9464
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["node", "/app/bin/portcullis.js", "health", "--address", "127.0.0.1:50051"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/bin/portcullis.js"]
CMD ["serve"]
