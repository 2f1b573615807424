#!/usr/bin/env bash
# Make sure a shared libLLVM >= 16 is present for Dr.Jit's CPU backend (Sionna RT on a CPU).
# Installs Debian/Ubuntu's libllvm19 through apt when it is missing and apt can be used; otherwise stops
# with a message that says exactly what to install.
set -euo pipefail
have() {
  for d in /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/lib64 /usr/lib /usr/local/lib; do
    for f in "$d"/libLLVM-1[6-9]*.so* "$d"/libLLVM-[2-9][0-9]*.so* "$d"/libLLVM.so.1[6-9]* "$d"/libLLVM.so.[2-9][0-9]*; do
      [ -e "$f" ] && { echo "$f"; return 0; }
    done
  done
  return 1
}
if [ -n "${DRJIT_LIBLLVM_PATH:-}" ] && [ -e "$DRJIT_LIBLLVM_PATH" ]; then exit 0; fi
if found=$(have); then exit 0; fi
if [ "$(uname -s)" = "Darwin" ]; then
  echo "twin: Sionna RT on a CPU needs libLLVM >= 16: run 'brew install llvm' and set DRJIT_LIBLLVM_PATH=\$(brew --prefix llvm)/lib/libLLVM.dylib" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo"; fi
fi
if command -v apt-get >/dev/null && { [ "$(id -u)" = "0" ] || [ -n "$SUDO" ]; }; then
  echo "twin: installing libllvm19 (Dr.Jit's CPU backend needs a shared libLLVM >= 16)" >&2
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libllvm19 >/dev/null
  have >/dev/null && exit 0
fi
echo "twin: Sionna RT on a CPU needs a shared libLLVM 16 or newer and none was found." >&2
echo "      Install it: 'sudo apt-get install -y libllvm19' (Debian 12 / Ubuntu 24.04), or your distribution's" >&2
echo "      LLVM >= 16 shared library, then re-run; or set DRJIT_LIBLLVM_PATH to its libLLVM.so." >&2
exit 1
