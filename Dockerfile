# One image, two commands: `orderpipe task validate` and `orderpipe task transform` (SPEC §5).
FROM python:3.12-slim AS build
WORKDIR /build
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir --prefix=/install ".[aws]"

FROM python:3.12-slim
RUN useradd --create-home --uid 10001 orderpipe
COPY --from=build /install /usr/local
USER orderpipe
ENV ORDERPIPE_HOME=/tmp/orderpipe \
    ORDERPIPE_BACKEND=aws \
    PYTHONUNBUFFERED=1
ENTRYPOINT ["orderpipe"]
CMD ["--help"]
