#!/usr/bin/env bash
# Makes sure the tools the tests use beyond npm are present: Debian's ffmpeg/ffprobe (test clips and
# output checks), nats-server (the NATS bus tests) and chromium (the dashboard's browser test, driven
# by playwright-core at /usr/bin/chromium). Installs them with apt-get when missing.
set -euo pipefail
need=()
command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || need+=(ffmpeg)
command -v nats-server >/dev/null 2>&1 || need+=(nats-server)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0
echo "installing test tools: ${need[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${need[@]}" >/dev/null
