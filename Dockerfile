# pprofd container image: built from Debian 12 packages only, runs as a non-root user.
#   docker build -t pprofd .
FROM debian:bookworm-slim AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN PPROFD_SKIP_PROMETHEUS=1 scripts/install-deps.sh
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DPPROFD_BUILD_TESTS=OFF \
 && cmake --build /build -j"$(nproc)" --target pprofd \
 && strip /build/src/pprofd

FROM debian:bookworm-slim
# Runtime libraries only: the shared objects pprofd links against.
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends ca-certificates libssl3 zlib1g libdeflate0 \
      libprotobuf32 libspdlog1.10 libfmt9 libyaml-cpp0.7 libprometheus-cpp-core1.0 libboost-url1.81.0 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /build/src/pprofd /usr/local/bin/pprofd
# 65532: the conventional "nonroot" uid; no shell login, no home.
USER 65532:65532
EXPOSE 9750
ENTRYPOINT ["/usr/local/bin/pprofd"]
CMD ["run", "--config.file=/etc/pprofd/pprofd.yaml"]
