#!/usr/bin/env bash
# Installs the Debian packages Rathaus needs (OCR, PDF, fonts for PDF export; browser, IMAP server
# and a speech synthesiser for tests) – only
# those missing.
set -euo pipefail

PACKAGES=(tesseract-ocr tesseract-ocr-deu chromium ocrmypdf poppler-utils dovecot-imapd fonts-dejavu-core espeak-ng)

missing=()
for pkg in "${PACKAGES[@]}"; do
    # dpkg -s also reports removed-but-configured packages, so check the status line.
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    # Packages present, but make sure the programs are really on PATH.
    for cmd in tesseract chromium ocrmypdf pdftoppm dovecot; do
        # dovecot lives in /usr/sbin, which is not on every user's PATH.
        if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ]; then
            echo "Systempaket installiert, aber Programm '$cmd' nicht im PATH gefunden – bitte PATH prüfen." >&2
            exit 1
        fi
    done
    echo "Systempakete vorhanden: ${PACKAGES[*]}"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "Fehlende Systempakete: ${missing[*]}. Bitte als Administrator installieren:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi

echo "Installiere fehlende Systempakete: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"

# The IMAP tests start their own private Dovecot; the system service that the package sets up is
# not needed, so a Dovecot installed just now is stopped and not started at boot.
if [[ " ${missing[*]} " == *" dovecot-imapd "* ]] && command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now dovecot >/dev/null 2>&1 || true
    echo "Dovecot nur für die Tests installiert: Systemdienst angehalten und deaktiviert."
fi
