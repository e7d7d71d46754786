# snapclass on CPU:  docker build -t snapclass . && docker run -p 8000:8000 -v snapclass-data:/data snapclass
# For an NVIDIA GPU, build with CUDA wheels: --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu130

# Stage 1: ONNX Runtime Web's files for the webapp download, fetched and checked against their pinned hashes by the
# same script as scripts/setup (they are not in git).
FROM node:20-slim AS web-runtime
WORKDIR /src
COPY scripts/fetch-web-runtime ./scripts/
COPY static/vendor/onnxruntime-web.sha256 ./static/vendor/
RUN bash scripts/fetch-web-runtime

# Stage 2: build the wheel, as `pip install snapclass` would get it (templates and static files inside).
FROM python:3.11-slim AS wheel
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY app ./app
COPY templates ./templates
COPY static ./static
COPY --from=web-runtime /src/static/vendor/onnxruntime-web ./static/vendor/onnxruntime-web
RUN pip wheel --no-deps --wheel-dir /wheels .

# Stage 3: install that wheel; no source checkout in the image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# torch first, in its own layer: it is most of the image and changes far less often than the code.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN pip install torch==2.14.1 torchvision==0.29.1 --index-url "$TORCH_INDEX_URL"

# The wheel's own requirements accept the torch above, so pip keeps it and fetches only the rest.
COPY --from=wheel /wheels /tmp/wheels
RUN pip install /tmp/wheels/snapclass-*.whl && rm -rf /tmp/wheels

RUN useradd --create-home --uid 1000 snapclass \
    && mkdir -p /data \
    && chown snapclass:snapclass /data
USER snapclass
# Not the package's directory: the app must not depend on where it is started from.
WORKDIR /home/snapclass

ENV SNAPCLASS_DATA_DIR=/data
VOLUME /data
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/api/health', timeout=4)"]

CMD ["snapclass", "serve", "--host", "0.0.0.0", "--port", "8000"]
