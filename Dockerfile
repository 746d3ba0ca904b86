# One image, two commands: `orderpipe task validate` and `orderpipe task transform`.
# The one Python version of the project: this base image (the Lambda runtime and the checks in
# tests/infra/test_container.py follow it). Pinned by digest; to move on, resolve the new digest
# with `docker buildx imagetools inspect python:X.Y-slim` and change only this line.
ARG PYTHON_IMAGE=python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

FROM ${PYTHON_IMAGE} AS build
WORKDIR /build
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir --prefix=/install ".[aws]"

FROM ${PYTHON_IMAGE}
RUN useradd --create-home --uid 10001 orderpipe
COPY --from=build /install /usr/local
USER 10001
ENV ORDERPIPE_HOME=/tmp/orderpipe \
    ORDERPIPE_BACKEND=aws \
    PYTHONUNBUFFERED=1
ENTRYPOINT ["orderpipe"]
CMD ["task", "--help"]
