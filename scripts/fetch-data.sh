#!/usr/bin/env bash
# scripts/fetch-data.sh — for machines without ../shared/data: download the public dataset files the project uses
# (the same files, pinned to the same commits, that ../shared/data/*/PROVENANCE.md names) into DEST/<dataset>/,
# and verify each one against its git blob id (so a moved or changed upstream file is caught, not used).
#
#   amazon-beauty   S3-Rec data/Beauty.txt -> sequences.txt, Beauty_item2attributes.json -> item2attributes.json,
#                   P5 datamaps.json (RDRec copy); with --titles also items.tsv (item_id, title, categories) rebuilt
#                   from TransRec's title_maps.npy / category_map.npy (needs python3 + numpy)
#   amazon-sports   S3-Rec Sports_and_Outdoors.txt + attributes, P5 datamaps.json (no titles exist upstream)
#   amazon-toys     P5 order sequential.txt (RDRec) + datamaps.json; S3-Rec's own Toys_and_Games.txt in
#                   s3rec_original/
#   movielens-100k  RecBole ml-100k.inter / ml-100k.item
#
# Usage: scripts/fetch-data.sh [--dest DIR] [--titles] [amazon-beauty|amazon-sports|amazon-toys|movielens-100k|all]
#   DEST defaults to ${PULSE_CACHE:-.cache}/data; then run e.g. `pulse data stats --data DEST/amazon-beauty`.
# PULSE_DATA_MIRROR=URL replaces https://raw.githubusercontent.com (same <owner>/<repo>/<commit>/<path> layout).
# Idempotent: a file already present with the right blob id is not fetched again. Needs curl or wget.
# NOTE: written without network access to GitHub (the development machines have none); the URLs and blob ids come
# from PROVENANCE.md, and every download is verified, so a wrong URL fails loudly instead of producing bad data.
set -euo pipefail
cd "$(dirname "$0")/.."

DEST="${PULSE_CACHE:-.cache}/data"
TITLES=0
WHICH=amazon-beauty
while [ $# -gt 0 ]; do
    case "$1" in
    --dest) DEST=$2; shift 2 ;;
    --titles) TITLES=1; shift ;;
    -h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    amazon-beauty | amazon-sports | amazon-toys | movielens-100k | all) WHICH=$1; shift ;;
    *) echo "fetch-data: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done

RAW=${PULSE_DATA_MIRROR:-https://raw.githubusercontent.com} # a mirror with the same layout (file:// works)
S3REC="$RAW/RUCAIBox/CIKM2020-S3Rec/2a81540ae18615d88ef88227b0c066e5b74781e5/data"
RDREC="$RAW/WangXFng/RDRec/4055c3028d3afbd57a0fffd54076825836b7cad7/data"
TRANSREC="$RAW/Linxyhaha/TransRec/da14d539a88bbdec4b1a36259b54068047134c29/data"
RECBOLE="$RAW/RUCAIBox/RecBole/7b02be5ec80a88310f2d04a27a82adfcbb5dc211/dataset"

# git's blob id of a file: sha1 of "blob <size>\0<content>" (what `git hash-object` prints)
blob_id() {
    local f=$1 n
    n=$(wc -c <"$f" | tr -d ' ')
    { printf 'blob %s\0' "$n"; cat "$f"; } | sha1sum | cut -d' ' -f1
}

download() { # download URL OUT
    if command -v curl >/dev/null 2>&1; then
        curl -fsSL --retry 3 -o "$2" "$1"
    elif command -v wget >/dev/null 2>&1; then
        wget -q -O "$2" "$1"
    else
        echo "fetch-data: needs curl or wget" >&2
        exit 1
    fi
}

# fetch URL OUT BLOB: download unless OUT already has the blob id; verify; atomic rename
fetch() {
    local url=$1 out=$2 want=$3
    mkdir -p "$(dirname "$out")"
    if [ -f "$out" ] && [ "$(blob_id "$out")" = "$want" ]; then
        echo "ok      $out"
        return 0
    fi
    echo "fetch   $url" >&2
    if ! download "$url" "$out.part"; then
        rm -f "$out.part"
        echo "fetch-data: download failed: $url" >&2
        exit 1
    fi
    local got
    got=$(blob_id "$out.part")
    if [ "$got" != "$want" ]; then
        rm -f "$out.part"
        echo "fetch-data: $url: blob $got, expected $want (upstream changed?)" >&2
        exit 1
    fi
    mv "$out.part" "$out"
    echo "fetched $out"
}

# items.tsv for Beauty from TransRec's title/category maps: TransRec's sequential_data.txt lists the same users in
# the same order as S3-Rec's Beauty.txt, so the TransRec -> S3-Rec item id map is read off position by position
# (checked to be consistent and one-to-one) exactly as PROVENANCE.md describes. Brand and keywords come from
# further repositories and are left out here.
beauty_titles() {
    local d=$1 tmp
    tmp=$(mktemp -d)
    download "$TRANSREC/beauty/rec_data/sequential_data.txt" "$tmp/sequential_data.txt"
    download "$TRANSREC/beauty/rec_data/title_maps.npy" "$tmp/title_maps.npy"
    download "$TRANSREC/beauty/rec_data/category_map.npy" "$tmp/category_map.npy" || true
    python3 - "$d/sequences.txt" "$tmp" "$d/items.tsv" <<'EOF'
import html, os, sys
import numpy as np
seq_path, tmp, out = sys.argv[1:4]
ours = [l.split() for l in open(seq_path)]
theirs = [l.split() for l in open(os.path.join(tmp, "sequential_data.txt"))]
if len(ours) != len(theirs):
    sys.exit(f"fetch-data: {len(theirs)} TransRec users, {len(ours)} S3-Rec users: cannot align")
t2s, s2t = {}, {}
for a, b in zip(ours, theirs):
    if len(a) != len(b):
        sys.exit(f"fetch-data: user {a[0]}: lengths differ ({len(a)} vs {len(b)}): cannot align")
    for x, y in zip(a[1:], b[1:]):
        if t2s.setdefault(y, x) != x or s2t.setdefault(x, y) != y:
            sys.exit(f"fetch-data: item map conflict at S3-Rec item {x} / TransRec item {y}")
tm = np.load(os.path.join(tmp, "title_maps.npy"), allow_pickle=True).item()
id2title = tm["id2title"] if "id2title" in tm else tm
cats = {}
cp = os.path.join(tmp, "category_map.npy")
if os.path.exists(cp) and os.path.getsize(cp) > 0:
    cm = np.load(cp, allow_pickle=True).item()
    if len(cm) == 1 and isinstance(next(iter(cm.values())), dict):
        cm = next(iter(cm.values()))
    for k, v in cm.items():
        if isinstance(v, str):
            cats[str(k)] = v
        elif isinstance(v, (list, tuple)):
            paths = [" > ".join(map(str, p)) if isinstance(p, (list, tuple)) else str(p) for p in v]
            cats[str(k)] = " | ".join(paths)
def clean(s):  # HTML entities unescaped as in PROVENANCE.md; tabs / newlines (no TSV quoting) become spaces
    return html.unescape(str(s)).replace("\t", " ").replace("\r", " ").replace("\n", " ")
def look(m, k):
    for key in (k, int(k) if k.isdigit() else k):
        if key in m:
            return m[key]
    return ""
n = max(int(x) for x in s2t)
missing = 0
with open(out + ".part", "w") as f:
    f.write("item_id\ttitle\tcategories\n")
    for i in range(1, n + 1):
        t = s2t.get(str(i))
        title = clean(look(id2title, t)) if t is not None else ""
        missing += not title
        f.write(f"{i}\t{title}\t{clean(cats.get(t, '')) if t is not None else ''}\n")
os.replace(out + ".part", out)
print(f"wrote {out}: {n} items, {n - missing} with titles")
EOF
    rm -rf "$tmp"
}

fetch_beauty() {
    local d="$DEST/amazon-beauty"
    fetch "$S3REC/Beauty.txt" "$d/sequences.txt" a29773026846d857ec8176cb25f37b23ecf20155
    fetch "$S3REC/Beauty_item2attributes.json" "$d/item2attributes.json" 805189e7a6dd1005ef38344f5d556f27b8dc240f
    fetch "$RDREC/beauty/datamaps.json" "$d/datamaps.json" a3922009abca0a916af300ff9a8d667141fe6826
    if [ "$TITLES" = 1 ]; then
        beauty_titles "$d"
    elif [ ! -f "$d/items.tsv" ]; then
        echo "note: no items.tsv (titles); rerun with --titles (python3 + numpy) for the text stages" >&2
    fi
}

fetch_sports() {
    local d="$DEST/amazon-sports"
    fetch "$S3REC/Sports_and_Outdoors.txt" "$d/sequences.txt" 50a7023ca502b42eb0e840c603abda6e851b2018
    fetch "$S3REC/Sports_and_Outdoors_item2attributes.json" "$d/item2attributes.json" \
        7c2e9a40c6534163fd8d6d1e3abfbfb860f137b6
    fetch "$RDREC/sports/datamaps.json" "$d/datamaps.json" b6639be7bf7d263e471ec3544eaca8689b7f564a
}

fetch_toys() {
    local d="$DEST/amazon-toys"
    fetch "$RDREC/toys/sequential.txt" "$d/sequences.txt" f6225d3e5dfe3dc58379500be5e8c226615a8977
    fetch "$RDREC/toys/datamaps.json" "$d/datamaps.json" 8bcdc5a13019dfa772e38fe4e1f7d5c0d397b7cd
    fetch "$S3REC/Toys_and_Games.txt" "$d/s3rec_original/Toys_and_Games.txt" 5459307b30f65949605b34d350bfad37586a1b97
    fetch "$S3REC/Toys_and_Games_item2attributes.json" "$d/s3rec_original/Toys_and_Games_item2attributes.json" \
        d13b361c07f57fc032014b86a0723461bbc8e30d
}

fetch_ml100k() {
    local d="$DEST/movielens-100k"
    fetch "$RECBOLE/ml-100k/ml-100k.inter" "$d/ml-100k.inter" 7345003ddf105cadcbc35e6c53dd2f44abfc4683
    fetch "$RECBOLE/ml-100k/ml-100k.item" "$d/ml-100k.item" a0c6606955f8cad89fdba1a3a3d5f5644f289828
}

case "$WHICH" in
amazon-beauty) fetch_beauty ;;
amazon-sports) fetch_sports ;;
amazon-toys) fetch_toys ;;
movielens-100k) fetch_ml100k ;;
all) fetch_beauty; fetch_sports; fetch_toys; fetch_ml100k ;;
esac
echo "done: datasets under $DEST (pulse data stats --data $DEST/<dataset>)"
