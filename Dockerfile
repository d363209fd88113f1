# The rtp-bench image: the CLI, its production dependencies and the native media addon (workers/native), no
# rtpengine (the workers in the cluster run it). Build from the repository's root:
#   docker build -t rtp-bench:0.1.0 .
# Used by kubernetes/rtp-bench-job.yaml and kubernetes/rtp-bench-shards.yaml. Not built by the tests (no container
# builder where they run): test/dockerfile.test.ts parses it and checks it against the repository.

# Builder: compilers for the addon and the dev dependencies for tsc; none of it reaches the image.
FROM node:20-bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# The lock file first, so the dependency layer is reused while only the sources change.
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json ./
COPY src ./src
COPY workers ./workers
# Not test/ or bench/: tsconfig.json includes them, but the image runs neither.
RUN npm run build
# --nodedir (in the script): the headers of the image's own node, so node-gyp needs no download.
RUN npm run build:native
RUN npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The addon is looked up beside the sources (workers/native/transport.ts), not under dist/.
COPY --from=build /app/workers/native/build/Release/rtp_transport.node ./workers/native/build/Release/
# Read at run time: the codec table (src/profile.ts) and the l7mp CRD schemas (src/mesh/crd.ts).
COPY profiles ./profiles
COPY kubernetes/crds ./kubernetes/crds
# `rtp-bench` on PATH, for the shell around it in rtp-bench-shards.yaml.
RUN ln -s /app/dist/src/cli.js /usr/local/bin/rtp-bench
# Non-root by default. The Jobs run it as root instead: real-time media threads need CAP_SYS_NICE, which
# Kubernetes gives to a root process only (see the Jobs' securityContext).
USER node
# Results go to ./results under the working folder: the node user's home, which it may write.
WORKDIR /home/node
ENTRYPOINT ["node", "/app/dist/src/cli.js"]
