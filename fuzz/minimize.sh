#!/usr/bin/env bash
# Minimise the committed corpus: edge coverage only (-use_counters=0), and for codec_stream
# only the inputs whose coverage the decode_message corpus (replayed as one-message streams)
# does not already reach, plus the hand-made stream seeds. Run from fuzz/ after fuzzing.
set -euo pipefail
cd "$(dirname "$0")"
cargo +nightly fuzz build codec_stream
cargo +nightly fuzz cmin decode_message corpus/decode_message -- -use_counters=0
target_dir="${CARGO_TARGET_DIR:-target}"
bin="$target_dir/$(rustc -vV | sed -n 's/^host: //p')/release/codec_stream"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir "$work/base"
# The decode_message corpus as codec_stream inputs (chunk size 0 = 1 octet at a time).
python3 - "$work/base" <<'PY'
import os, sys
out = sys.argv[1]
for name in os.listdir("corpus/decode_message"):
    data = open(os.path.join("corpus/decode_message", name), "rb").read()
    if data:
        open(os.path.join(out, "dm-" + name), "wb").write(bytes([data[0], 0]) + data[1:])
PY
"$bin" -merge=1 -use_counters=0 "$work/base" corpus/codec_stream >"$work/merge.log" 2>&1 \
  || { cat "$work/merge.log"; exit 1; }
rm -rf corpus/codec_stream
mkdir corpus/codec_stream
find "$work/base" -type f ! -name 'dm-*' -exec cp {} corpus/codec_stream/ \;
python3 seeds.py codec_stream
echo "decode_message: $(ls corpus/decode_message | wc -l) files, codec_stream: $(ls corpus/codec_stream | wc -l) files, $(du -sb corpus | cut -f1) octets"
