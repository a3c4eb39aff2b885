#!/usr/bin/env bash
# Debian packages the test suite drives as real components (not mocks):
#   chromium        headless browser: report and web-viewer tests
#   poppler-utils   pdftoppm: renders report.pdf pages
#   dcmtk           storescp: a real DICOM server for C-STORE tests
#   orthanc         a real PACS (C-STORE / C-FIND)
#   dicom3tools     dciodvfy: DICOM conformance of exported objects
#   openigtlink-examples  independent OpenIGTLink receivers
#   fonts-dejavu-core     fonts for rendered figures and PDF pages
# Installs what is missing when run as root (CI); otherwise prints the apt-get command and
# carries on (the tests that need a missing package skip with the reason).
set -euo pipefail
PACKAGES=(chromium poppler-utils dcmtk orthanc dicom3tools openigtlink-examples fonts-dejavu-core)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "missing system packages (tests using them will skip): sudo apt-get install ${missing[*]}" >&2
fi
