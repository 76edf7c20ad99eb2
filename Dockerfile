# Pier in one image: the runtime, the npm packages serving needs, and the example components with
# their compile cache. See README.md, "Docker".
#   docker build -t pier .
#   docker run -p 8000:8000 -v pier-data:/app/data pier
#   docker build --target build -t pier-build .    # the toolchain, to build your own components
# DENO_IMAGE: the base, for machines with no registry (tests/image/run.sh makes a stand-in there).
ARG DENO_IMAGE=denoland/deno:2.9.6

# The toolchain (componentize-js, TypeScript, binaryen, ...) and the examples built from source.
FROM ${DENO_IMAGE} AS build
WORKDIR /app
COPY deno.json deno.lock ./
RUN deno install --frozen
COPY main.ts ./
COPY runtime runtime
COPY tools tools
COPY guest guest
COPY wit wit
COPY components components
RUN deno task build
COPY docker docker

# The npm packages the server loads, at the lockfile's versions, from the build stage's Deno cache.
# jco-transpile's declared dependencies binaryen (93 MB), oxc-minify and preview3-shim serve its
# optimise/minify/asm.js paths; its `./component` entry, the one Pier imports, loads none of them,
# and musl builds are of no use on this glibc image.
FROM build AS deps
WORKDIR /deps
RUN deno run --allow-read=/app/deno.json /app/docker/runtime_config.ts /app/deno.json > deno.json \
 && cp /app/deno.lock . \
 && deno install --node-modules-dir=auto \
 && cd node_modules/.deno \
 && rm -rf binaryen@* oxc-minify@* @oxc-minify+* @bytecodealliance+preview3-shim@* ./*-musl@*

FROM ${DENO_IMAGE}
WORKDIR /app
COPY --from=deps /deps/deno.json /deps/deno.lock ./
COPY --from=deps /deps/node_modules node_modules
COPY main.ts ./
COPY runtime runtime
COPY tools tools
COPY docker docker
# Built components only: with no `*.ts` beside them, a start has nothing to build.
COPY components/*.permissions.json components/
COPY --from=build /app/components/*.wasm components/
RUN mkdir data && chown deno:deno data
ENV PIER_HOSTNAME=0.0.0.0 PORT=8000 PIER_DATA=/app/data PIER_COMPONENTS=/app/components
USER deno
# The examples' compile cache (and Deno's for Pier's own modules) goes into the image; a new
# named volume at /app/data starts as a copy of it. (Before VOLUME: later changes would be lost.)
RUN deno run -A docker/warm_cache.ts /app/components /app/data \
 && deno cache --no-config runtime/capabilities/database/child.ts \
 && deno cache --no-config runtime/isolation/native_child.ts \
 && deno cache docker/health.ts \
 && rm -rf /tmp/pier-test-*
VOLUME /app/data
EXPOSE 8000
# Pier stops on SIGTERM; `deno task` and the launcher pass it on to the server.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
  CMD ["deno", "run", "--allow-net=127.0.0.1", "--allow-env=PORT", "/app/docker/health.ts"]
# Work in flight gets 8 s at a stop: Docker kills at 10 s unless told otherwise (--stop-timeout).
CMD ["deno", "task", "start", "--grace", "8"]
