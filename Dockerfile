# Pier in one image: the runtime, its npm dependencies and the example components.
#   docker build -t pier .
#   docker run -p 8000:8000 -v pier-data:/app/data pier
FROM denoland/deno:2.9.6

WORKDIR /app
COPY deno.json deno.lock ./
RUN deno install --frozen
COPY . .
# Build the example components now, so the container starts serving at once.
RUN deno task build

ENV PIER_HOSTNAME=0.0.0.0 PORT=8000 PIER_DATA=/app/data
VOLUME /app/data
EXPOSE 8000
CMD ["deno", "task", "start"]
