#!/usr/bin/env bash
# Make every committed dataset under data/ from the real photos in ../shared/data, with the label
# reviews in data/reviews applied. Rerunning continues where an import stopped (nothing found is redone;
# photos of other people where no hand was found are searched again, see collect --retry-missed), and applies
# a review changed since to the samples saved before (collect --update-saved: relabelled, dropped to trash/).
#   bash data/make_datasets.sh [SHARED_DATA] [WORKERS]
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${1:-../shared/data}
workers=${2:-2}
many="$shared/hands_many"
collect() { python -m pipeline.collect --workers "$workers" --quiet --update-saved "$@"; }
# The other people's photos: search again those in which an earlier import found no hand (close-ups, which
# the detector now finds inside a border). data/fingers is left as first imported (the tests' splits use it).
again() { collect --retry-missed "$@"; }

collect --from "$shared/fingers" --data data/fingers --review data/reviews/fingers.tsv \
  --map 0=fist --map 1=one --map 2=two --map 3=three --map 4=four --map 5=five
# 218 students; the camera's running number rises through a sitting: groups of 100 numbers.
again --from "$many/sign_digits" --data data/sign_digits --review data/reviews/sign_digits.tsv \
  --group-by 'IMG_(\d+)\d\d\.'
# Phone photos at home, several people: a group per day and WhatsApp batch (or camera hour).
again --from "$many/homes" --data data/homes --review data/reviews/homes.tsv \
  --map review_labelled_five=five --group-by '^IMG[-_](\d{8})[-_](?:WA)?(\d\d)'
# Green-screen rock-paper-scissors, people not recorded: one group.
again --from "$many/rps_green" --data data/rps_green --review data/reviews/rps_green.tsv --group rps_green
# ASL letters, 4-6 people not recorded, augmented copies of one photo share a letter: a group per letter.
again --from "$many/asl_letters" --data data/asl_letters --review data/reviews/asl_letters.tsv \
  --group-by '^letter(\w)_'
# Two people, Set1 and Set2.
again --from "$many/epsrc" --data data/epsrc --review data/reviews/epsrc.tsv --group-by '^(Set\d)_'
# Hands of many people making none of the six (call, rock, thumbs up, typing...), and other people's fours.
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree/none/gestures" "$tree/four/gestures" "$tree/none/images" "$tree/none/videos"
for g in call rock none; do ln -s "$(realpath "$shared/images/gestures/$g")" "$tree/none/gestures/$g"; done
ln -s "$(realpath "$shared/images/gestures/four")" "$tree/four/gestures/four"
ln -s "$(realpath "$shared/images/thumb_up.jpg")" "$(realpath "$shared/images/two_thumbs_up.jpg")" "$tree/none/images/"
ln -s "$(realpath "$shared/videos/typing.mp4")" "$(realpath "$shared/videos/fist_then_thumbs_up.mp4")" "$tree/none/videos/"
again --from "$tree" --data data/gestures --review data/reviews/gestures.tsv
