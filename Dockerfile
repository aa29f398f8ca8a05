# smallpt as a function service: a static x86-64 `server` (and the `render` CLI) on an empty image.
#
#   docker build --platform linux/amd64 -t smallpt-fc .
#   docker run --rm --read-only -p 9000:9000 smallpt-fc
#
# Function platforms run amd64 only, so every stage is pinned to linux/amd64 (on an arm64 Mac the
# build stage runs emulated: slow, but the binaries are the real thing). The `build` stage leaves
# the binaries at /app/server and /app/render; CI replaces that stage with a folder laid out the
# same way (`buildah bud --build-context build=<dir>`, see scripts/container-smoke).

# The toolchain CI uses (rustc 1.95.0); bookworm ships the static glibc (libc.a) we link.
FROM --platform=linux/amd64 rust:1.95.0-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.77
WORKDIR /src

# The recipe: manifests and lock file only, so the dependency layer below is rebuilt only when
# they change, not on every source edit.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
# glibc, statically linked (not musl: the classic engine must match glibc's libm sin/cos/pow bit for
# bit). --target keeps the flag off build scripts and proc macros, which must stay dynamic.
ENV RUSTFLAGS="-C target-feature=+crt-static"
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --target x86_64-unknown-linux-gnu --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --target x86_64-unknown-linux-gnu -p server -p render-cli \
 && mkdir -p /app \
 && cp target/x86_64-unknown-linux-gnu/release/server target/x86_64-unknown-linux-gnu/release/render /app/

# Nothing but the two binaries: no shell, no libc, nothing to write to (renders stream from
# memory), so a read-only root filesystem is fine.
FROM --platform=linux/amd64 scratch
COPY --from=build /app/server /app/server
COPY --from=build /app/render /app/render
# FunctionGraph's default UID/GID; FC and SCF run it as is.
USER 1003:1003
# FC and SCF: 9000 (the server's default). FunctionGraph: set PORT=8000.
EXPOSE 9000
ENTRYPOINT ["/app/server"]
