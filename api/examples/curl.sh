#!/usr/bin/env bash
# The README's curl tour of seglossd. Start the daemon first (`make run`), then:
#
#     api/examples/curl.sh                   # against http://127.0.0.1:8080
#     SEGLOSS_URL=http://host:port api/examples/curl.sh
#
# It evaluates the golden case tests/golden/voc_palette_weighted (a batch of two 64x64 VOC
# palette masks, 21 classes, per-class weights) twice - parameters in the query string, then in
# a params part - shows GET /v1/info, and shows what an error looks like.
set -euo pipefail
cd "$(dirname "$0")/../.."
URL=${SEGLOSS_URL:-http://127.0.0.1:8080}
CASE=tests/golden/voc_palette_weighted

echo "## What the daemon is: version, limits, formats, defaults, routes"
curl -sS --fail-with-body "$URL/v1/info"
echo

echo "## Evaluate, parameters in the query string"
# logits.npy is float32 (2, 21, 64, 64); one palette PNG per batch item, in batch order.
# The 21 class weights go in one comma-separated value.
weights=1.438,1.846,1.664,0.838,0.95,1.81,0.508,1.732,1.696,1.202,0.955,0.918,0.882,1.168,1.257
weights=$weights,1.33,1.993,1.689,1.433,1.983,0.823
curl -sS --fail-with-body "$URL/v1/evaluate?class_weights=$weights&alpha=0.5&gamma=2" \
    -F logits=@$CASE/logits.npy \
    -F mask=@$CASE/mask_0.png \
    -F mask=@$CASE/mask_1.png
echo

echo "## Evaluate, the same parameters as a params part (a JSON object)"
# Query keys and params keys may be mixed; a key given both ways is a 400.
curl -sS --fail-with-body "$URL/v1/evaluate?confusion_matrix=true" \
    -F logits=@$CASE/logits.npy \
    -F mask=@$CASE/mask_0.png \
    -F mask=@$CASE/mask_1.png \
    -F "params=@$CASE/params.json;type=application/json"
echo

echo "## An error: one mask for a batch of two"
# Errors are application/problem+json; "detail" (and "error") says what to fix.
# -w prints the status after the body; no --fail-with-body here, so the script goes on.
curl -sS -w '\nHTTP status %{http_code}\n' "$URL/v1/evaluate" \
    -F logits=@$CASE/logits.npy \
    -F mask=@$CASE/mask_0.png
