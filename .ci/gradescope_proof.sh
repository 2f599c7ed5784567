#!/usr/bin/env bash
# The Gradescope bundle, proven the way Gradescope runs it: in a fresh Debian root file system
# (debootstrap from this machine's own apt source), as root, `setup.sh`, then for every
# student of the sample class: the submission at /autograder/submission, `run_autograder`, and
# its results.json against `conformance grade` of the same class on this machine (the total
# and every test's score).
#
#   sudo .ci/gradescope_proof.sh [CACHE_DIR]       (default /work/cache; minutes, not seconds)
#
# Needs root and debootstrap (apt-get install debootstrap). The minimal base system is built
# once in CACHE_DIR/debian-base and copied fresh for each proof; nothing goes into the
# repository. The kit is a wheel built from this tree (it is not on the package index): the
# bundle is made with `--kit`. Its dependencies come from this machine's pip configuration
# (its index, or a local mirror: /etc/pip.conf and the directories it names are bound
# read-only into the root file system), as Gradescope's image reaches PyPI. Exit status 0
# when every student's scores agree.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
cache=${1:-/work/cache}
if [ "$(id -u)" != 0 ]; then echo "SKIP: needs root (chroot, mounts)"; exit 77; fi
if ! command -v debootstrap >/dev/null; then
    echo "SKIP: needs debootstrap (apt-get install debootstrap)"; exit 77
fi
python=${PYTHON:-$repo/.venv/bin/python}
base=$cache/debian-base
work=$cache/gradescope-proof
rootfs=$work/rootfs

# This machine's own apt source: its first deb822 or one-line source, and its suite.
mirror=$(grep -h -m1 -E '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' || true)
[ -n "$mirror" ] || mirror=$(grep -h -m1 -E '^deb ' /etc/apt/sources.list | awk '{print $2}')
suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
if [ ! -x "$base/bin/bash" ]; then
    echo "== debootstrap $suite from $mirror into $base (once)"
    rm -rf "$base.tmp"
    debootstrap --variant=minbase "$suite" "$base.tmp" "$mirror" > "$cache/debootstrap.log" 2>&1
    mv "$base.tmp" "$base"
fi

mounts=()
cleanup() {
    for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
        umount -R "${mounts[i]}" 2>/dev/null || umount -l "${mounts[i]}" 2>/dev/null || true
    done
}
trap cleanup EXIT
bind() {  # bind SOURCE into the root file system, read-only unless $3 = rw
    mkdir -p "$rootfs$1"
    mount --rbind "$1" "$rootfs$1"
    mount --make-rslave "$rootfs$1"
    mounts+=("$rootfs$1")
    if [ "${2:-ro}" = ro ]; then mount -o remount,bind,ro "$rootfs$1" 2>/dev/null || true; fi
}

echo "== a fresh root file system: $rootfs"
rm -rf "$work"
mkdir -p "$work"
cp -a "$base" "$rootfs"
# Its root a mount point of its own, as a container's is (the sandbox's isolation mounts a
# view of the system under it; in a plain chroot `mount /` fails and it runs without).
mount --bind "$rootfs" "$rootfs"; mounts+=("$rootfs")
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
cp /etc/apt/sources.list.d/*.sources "$rootfs/etc/apt/sources.list.d/" 2>/dev/null || true
mount -t proc proc "$rootfs/proc"; mounts+=("$rootfs/proc")
bind /sys rw
bind /dev rw
# The machine's /tmp: graders lock their sandbox uids there, so this one and another grader
# on the machine never take the same uid (each kills every process of its uids).
bind /tmp rw
# The machine's pip configuration and the local indexes it names (read-only), and the
# certificate authorities it trusts beyond Debian's (a proxy's), as apt and pip here use them.
confs=()
for f in /etc/pip.conf /etc/xdg/pip/pip.conf /root/.config/pip/pip.conf /root/.pip/pip.conf; do
    [ -f "$f" ] || continue
    confs+=("$f")
    mkdir -p "$rootfs$(dirname "$f")" && cp -a "$(dirname "$f")/." "$rootfs$(dirname "$f")/"
done
if [ "${#confs[@]}" -gt 0 ]; then
    for d in $(grep -ho 'file://[^ ]*' "${confs[@]}" | sed 's|file://||; s|/simple$||') \
        $(grep -h '^find-links' "${confs[@]}" | awk -F= '{print $2}'); do
        if [ -d "$d" ]; then bind "$d"; fi
    done
fi
if [ -d /usr/local/share/ca-certificates ]; then
    mkdir -p "$rootfs/usr/local/share/ca-certificates"
    cp -a /usr/local/share/ca-certificates/. "$rootfs/usr/local/share/ca-certificates/"
fi

echo "== the bundle: a wheel of this tree, then conformance gradescope"
rm -rf "$work/dist" && "$python" -m pip wheel --quiet --no-deps "$repo" -w "$work/dist"
wheel=$(ls "$work"/dist/*.whl)
"$python" -m conformance gradescope examples/class/grading.toml -o "$work/autograder.zip" --kit "$wheel"
mkdir -p "$rootfs/autograder/source" "$rootfs/autograder/results"
(cd "$rootfs/autograder/source" && "$python" -m zipfile -e "$work/autograder.zip" . \
    && chmod +x setup.sh run_autograder)

echo "== setup.sh in the root file system"
start=$(date +%s)
chroot "$rootfs" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    bash -c 'cd /autograder/source && ./setup.sh' > "$work/setup.log" 2>&1 \
    || { tail -30 "$work/setup.log"; exit 1; }
echo "setup.sh: $(( $(date +%s) - start )) s"
cp "$rootfs/autograder/source/run_autograder" "$rootfs/autograder/run_autograder"

echo "== conformance grade of the sample class on this machine"
cp -a examples/class "$work/class"
rm -rf "$work/class/__pycache__" "$work/class/reproducibility.py"
"$python" -m conformance grade "$work/class" -j 2 --out "$work/host" 2> "$work/host.log" \
    || { tail -20 "$work/host.log"; exit 1; }

status=0
for dir in "$work"/class/*/; do
    name=$(basename "$dir")
    rm -rf "$rootfs/autograder/submission" "$rootfs/autograder/results"
    mkdir -p "$rootfs/autograder/results"
    cp -a "$dir" "$rootfs/autograder/submission"
    start=$(date +%s)
    chroot "$rootfs" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
        /autograder/run_autograder > "$work/$name.log" 2>&1 || true
    cp "$rootfs/autograder/results/results.json" "$work/$name.results.json" 2>/dev/null || true
    "$python" - "$work/host/$name/results.json" "$work/$name.results.json" "$name" \
        "$(( $(date +%s) - start ))" <<'PY' || status=1
import json, sys
host_path, box_path, name, took = sys.argv[1:]
try:
    box = json.load(open(box_path))
except (OSError, ValueError) as exc:
    print(f"{name}: no results.json from run_autograder ({exc})")
    sys.exit(1)
host = json.load(open(host_path))
def scores(doc):
    return {t.get("number", t["name"]): (t["score"], t["max_score"]) for t in doc["tests"]}
differ = {k: (v, scores(box).get(k)) for k, v in scores(host).items() if scores(box).get(k) != v}
most = sum(t["max_score"] for t in box["tests"])
same = box["score"] == host["score"] and not differ and set(scores(box)) == set(scores(host))
print(f"{name}: run_autograder {box['score']}/{most}, conformance grade {host['score']}"
      f" ({took} s) {'same' if same else 'DIFFERENT ' + repr(differ)}")
sys.exit(0 if same else 1)
PY
done
[ $status = 0 ] && echo "every student: the same scores" || echo "scores differ: see $work"
exit $status
