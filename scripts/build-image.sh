#!/usr/bin/env bash
# Build the image of every role (Dockerfile) with podman, where no Docker daemon and no registry can be reached:
#   scripts/build-image.sh [--tag=localhost/adaptive-trading:dev]
# The base image is made from Debian's packages (mmdebstrap: Python 3.11, a venv for pip, the CA bundle), once,
# as localhost/python-venv:bookworm; the Dockerfile's PYTHON_IMAGE takes it (python:3.11-slim stays its default
# for a machine that reaches Docker Hub). PyPI is reached from the build with the host's CA bundle mounted. Run as
# root, it installs what it needs from Debian (podman, runc, iptables, catatonit, mmdebstrap).
set -euo pipefail
cd "$(dirname "$0")/.."
TAG=localhost/adaptive-trading:dev
BASE=localhost/python-venv:bookworm
for argument in "$@"; do
    case "$argument" in
        --tag=*) TAG="${argument#*=}" ;;
        -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build-image.sh: unknown flag $argument (see --help)" >&2; exit 2 ;;
    esac
done
export CONTAINERS_CONF="$PWD/deploy/podman/containers.conf"

if ! command -v podman >/dev/null || ! command -v mmdebstrap >/dev/null || ! command -v runc >/dev/null; then
    [ "$(id -u)" = 0 ] || { echo "build-image.sh: podman, runc and mmdebstrap are needed (Debian's packages)" >&2; exit 1; }
    install=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends podman runc iptables
             catatonit mmdebstrap)
    "${install[@]}" >/dev/null || { apt-get update -q >/dev/null && "${install[@]}" >/dev/null; }
fi

if ! podman image exists "$BASE"; then
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    # passwd: the Dockerfile's useradd. An imported image has no PATH of its own: the base layer sets one.
    mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates,passwd bookworm \
        "$work/rootfs.tar"
    podman import --quiet "$work/rootfs.tar" localhost/debian-python:bookworm >/dev/null
    printf '%s\n' 'FROM localhost/debian-python:bookworm' \
        'ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        'RUN /usr/bin/python3 -m venv /opt/venv' > "$work/Containerfile"
    podman build --quiet -t "$BASE" -f "$work/Containerfile" "$work" >/dev/null
fi

podman build --quiet --build-arg "PYTHON_IMAGE=$BASE" -v /etc/ssl/certs:/etc/ssl/certs:ro -t "$TAG" . >/dev/null
echo "$TAG"
