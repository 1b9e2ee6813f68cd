#!/usr/bin/env bash
# Install the Debian packages a make target needs, when running as root and they are missing.
#   scripts/setup_system.sh base     espeak-ng (phonemizer, test voices)
#   scripts/setup_system.sh test     + chromium (the headless browser test of hylac-tts serve's page)
#   scripts/setup_system.sh bench    + opus-tools codec2 ffmpeg sox (classic codec baselines)
#   scripts/setup_system.sh corpus   + MBROLA / festival voices, sentence sources (needs contrib/non-free),
#                                    real recorded speech (Asterisk prompts in five languages,
#                                    festvox-ru) and ffmpeg to decode them
set -euo pipefail
level=${1:-base}
pkgs=(espeak-ng libespeak-ng1)
case "$level" in
  base) ;;
  test) pkgs+=(chromium) ;;
  bench) pkgs+=(opus-tools codec2 ffmpeg sox) ;;
  corpus)
    pkgs+=(sox mbrola festival festvox-kallpc16k festvox-kdlpc16k festvox-rablpc16k festvox-us-slt-hts
           festvox-ellpc11k festvox-italp16k festvox-itapc16k
           fortunes fortunes-de fortunes-es fortunes-it fortunes-br ffmpeg festvox-ru)
    for l in en es fr it ru; do pkgs+=("asterisk-core-sounds-$l" "asterisk-core-sounds-$l-g722"); done
    for v in us1 us2 us3 en1 fr1 fr2 fr3 fr4 fr5 fr6 fr7 de1 de2 de3 de4 de5 de6 de7 it3 it4 br1 br2 br3 br4 pt1 nl2 nl3 ar1 ar2; do
      pkgs+=("mbrola-$v")
    done ;;
  *) echo "unknown level $level (base|test|bench|corpus)" >&2; exit 2 ;;
esac
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "missing Debian packages (install them as root): ${missing[*]}" >&2
  exit 0
fi
if [ "$level" = corpus ] && ! grep -rqs "non-free" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  . /etc/os-release
  printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: %s\nComponents: contrib non-free\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$VERSION_CODENAME" > /etc/apt/sources.list.d/hylac-nonfree.sources
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
