#!/usr/bin/env bash
# Terraform runs inside bubblewrap, with slirp4netns for its network (docs/security.md):
# installed here when missing (as root, with apt), or named for the person to install.
set -euo pipefail
case "${TERRAFORM_SANDBOX:-bwrap}" in none|container) exit 0 ;; esac
missing=""
command -v bwrap >/dev/null 2>&1 || missing="$missing bubblewrap"
if [ "${TERRAFORM_SANDBOX_NETWORK:-egress}" = egress ]; then
  command -v slirp4netns >/dev/null 2>&1 || missing="$missing slirp4netns"
fi
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing the Terraform sandbox's tools:$missing"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  exit 0
fi
echo "Terraform runs in a sandbox that needs:$missing" >&2
echo "install them (Debian/Ubuntu: sudo apt-get install$missing)," >&2
echo "or set TERRAFORM_SANDBOX_NETWORK=none (no slirp4netns: runs get no network)." >&2
exit 1
