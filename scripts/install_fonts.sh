#!/bin/sh
# Installs the printed font families that printed-en trains and validates on (Debian 12).
# One command on a training machine: sudo scripts/install_fonts.sh
#
# What is left out on purpose: handwriting, script and display faces (they are not
# printed text), non-Latin fonts, and the families kept for the project's independent test
# (never used for training or validation, see crnn_ocr.data.synth.fonts.NEVER_USE): URW base35
# (fonts-urw-base35, gsfonts), TeX Gyre (fonts-texgyre), Crosextra Carlito and Caladea,
# Roboto (fonts-roboto*, Roboto Slab included). crnn_ocr.data.synth.fonts also drops them when they are
# installed anyway, so this list is for breadth, not for the exclusion.
set -eu
PACKAGES="
fonts-dejavu fonts-dejavu-extra fonts-liberation fonts-liberation2 fonts-freefont-ttf fonts-croscore
fonts-noto-core fonts-noto-mono fonts-open-sans fonts-lato fonts-inter fonts-cantarell fonts-oxygen
fonts-karla fonts-karmilla fonts-cabin fonts-manrope fonts-play fonts-tuffy fonts-clear-sans fonts-junction
fonts-b612 fonts-sil-andika fonts-paratype fonts-mplus fonts-averia-sans-gwf fonts-dosis
fonts-quicksand fonts-comfortaa fonts-league-spartan fonts-beteckna fonts-jura fonts-yanone-kaffeesatz
fonts-linuxlibertine fonts-ebgaramond fonts-stix fonts-sil-gentium fonts-sil-gentiumplus fonts-sil-charis
fonts-sil-doulos fonts-junicode fonts-cmu fonts-lmodern fonts-gfs-didot fonts-vollkorn fonts-oldstandard
fonts-prociono fonts-goudybookletter fonts-lindenhill fonts-averia-serif-gwf
fonts-adf-accanthis fonts-adf-gillius fonts-adf-universalis fonts-adf-verana fonts-adf-tribun
fonts-adf-baskervald fonts-adf-berenis fonts-adf-ikarius fonts-adf-romande
fonts-inconsolata fonts-firacode fonts-jetbrains-mono fonts-hack fonts-courier-prime fonts-anonymous-pro
fonts-mononoki fonts-go fonts-hermit fonts-league-mono fonts-monofur fonts-agave fonts-ocr-b
"
# shellcheck disable=SC2086
apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=900 $PACKAGES
fc-cache -f >/dev/null 2>&1 || true
