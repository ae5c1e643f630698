#!/usr/bin/env bash
# Fill benchmarks/gpu_carry/ (git-ignored) with what benchmarks/gpu_check.sh needs on a GPU
# machine without network (Python 3.12, torch, transformers, accelerate, h5py, pandas,
# scikit-learn, sentencepiece already there): the py3.12 x86-64 wheels of the packages it
# lacks, from PyPI, and copies of the small upstream fixtures (Baichuan2's remote code, the
# WeNet export, three families of the MERTools zoo). About 58 MB, 43 of them bitsandbytes
# (int8/int4 plans; BNB=0 leaves it out).
# Run here, from anywhere in the checkout; then carry benchmarks/gpu_carry (docs/gpus.md).
set -eu
cd "$(dirname "$0")/.."
out=benchmarks/gpu_carry
mkdir -p "$out/wheels" "$out/fixtures"
pkgs=(open_clip_torch==3.3.0 ftfy==6.3.1 wcwidth==0.9.4 kaldi-native-fbank==1.23.0)
[ "${BNB:-1}" = 0 ] || pkgs+=(bitsandbytes==0.50.2)
plat=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 \
    manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64 any; do
    plat+=(--platform "$p")
done
"${PYTHON:-python3}" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp "${plat[@]}" -d "$out/wheels" "${pkgs[@]}"
# Fixtures: the lookup of mersemi.fixtures.shared: ../shared or ../../shared.
for name in baichuan2-remote-code wenet-u2pp-small; do
    src=""
    for root in ../shared ../../shared; do
        [ -d "$root/fixtures/$name" ] && src="$root/fixtures/$name" && break
    done
    if [ -z "$src" ]; then
        echo "fixture $name not found beside the checkout: its part will be skipped" >&2
        continue
    fi
    mkdir -p "$out/fixtures/$name"
    find "$src" -maxdepth 1 -type f \( -name '*.py' -o -name '*.json' -o -name '*.txt' \
        -o -name '*.zip' -o -name '*.wav' -o -name '*.npy' -o -name '*.md' \) \
        -exec cp {} "$out/fixtures/$name/" \;
done
# The part of mertools-zoo that the `families` part reads (~8 MB): its inputs, reference.json
# and, per modality, one model with MERTools' files from it (gpu_check/families.py MODELS).
zoo=""
for root in ../shared ../../shared; do
    [ -f "$root/fixtures/mertools-zoo/reference.json" ] && zoo="$root/fixtures/mertools-zoo" && break
done
if [ -z "$zoo" ]; then
    echo "fixture mertools-zoo not found beside the checkout: the families part will be skipped" >&2
else
    dst="$out/fixtures/mertools-zoo"
    if [ -d "$dst" ]; then chmod -R u+w "$dst" && rm -rf "$dst"; fi
    mkdir -p "$dst/models" "$dst/mertools/features"
    cp -L "$zoo/reference.json" "$zoo/README.md" "$dst/"
    cp -rL "$zoo/inputs" "$dst/"
    for m in dinov2-large chinese-roberta-wwm-ext-large wavlm-base; do
        cp -rL "$zoo/models/$m" "$dst/models/"
        cp -rL "$zoo/mertools/features/$m-UTT" "$dst/mertools/features/"
    done
    chmod -R u+w "$dst"  # the fixture is read-only; its copy must be replaceable on a rerun
fi
du -sh "$out"/wheels "$out"/fixtures
