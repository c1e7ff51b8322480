#!/usr/bin/env bash
# npm run dev: the local control plane (built and started if needed), the manifests applied,
# the handler running on this machine against it, and Traefik in front of it serving the
# public route, with pretty logs.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/cluster-env.sh
source scripts/cluster-env.sh

say() { printf '[dev] %s\n' "$*" >&2; }
kubectl() { "$BIN_DIR/kubectl-v$K8S_VERSION" "$@"; }

export NAMESPACE=gptme-fleet
export HTTP_PORT=${HTTP_PORT:-8080}
export ADMIN_TOKEN=${ADMIN_TOKEN:-dev-admin-token}
# Any well-formed key is a client: dev listens on loopback only. A fleet others can reach
# sets keys (API_KEYS_FILE) or jwt (README, "Identities").
export CLIENT_AUTH=${CLIENT_AUTH:-open}
TRAEFIK_PORT=${TRAEFIK_PORT:-8000}
# endpoint.url in answers: the gateway as clients reach it here, through Traefik.
export PUBLIC_URL=${PUBLIC_URL:-http://127.0.0.1:$TRAEFIK_PORT}
# gptme's web UI on its own origin: sign-in links (login.url) open it, and it may call the
# fleet from there (CORS). A dev link may wait a while before it is clicked: 15 minutes.
WEBUI_PORT=${WEBUI_PORT:-5701}
export WEBUI_URL=${WEBUI_URL:-http://127.0.0.1:$WEBUI_PORT/}
export CORS_ORIGINS=${CORS_ORIGINS:+$CORS_ORIGINS,}http://127.0.0.1:$WEBUI_PORT
export LOGIN_CODE_TTL=${LOGIN_CODE_TTL:-15m}
DEV_KEY=${DEV_KEY:-dev-client-key-0001}
# Previews at <port>-<instance name>.preview.localhost:$TRAEFIK_PORT: browsers resolve *.localhost
# to loopback (the host pattern in k8s/local/fleet-operator/10-traefik-previews.yaml).
export PREVIEW_DOMAIN=${PREVIEW_DOMAIN:-preview.localhost}
# A warm pool, so a new instance is ready at once (each member runs a real gptme-server here).
export POOL_SIZE=${POOL_SIZE:-3}
# A model out of the box: every dev client has the plan `dev` (docs/plans.md), whose template
# (k8s/local/models/) gives gptme-server a default model; its provider is an OpenAI-compatible
# stand-in on this machine that checks the key it is given. The key lives in a file here and
# in the Secret fleet-model-credentials, never in the template or a ClientPod.
MODEL_PORT=${MODEL_PORT:-5702}
MODEL_KEY_FILE="$ROOT/.cluster/dev/model-api-key"
export PLANS_FILE=${PLANS_FILE:-$ROOT/.cluster/dev/plans.yaml}

bash scripts/cluster.sh up
export KUBECONFIG="$ROOT/.cluster/kubeconfig"
# A namespace still being deleted takes nothing new (the end-to-end suite deletes this one when
# it ends, and its real node's Pods take a while to stop): wait until it is gone.
if [ "$(kubectl get namespace "$NAMESPACE" -o jsonpath='{.status.phase}' 2>/dev/null)" = Terminating ]; then
  say "namespace $NAMESPACE is still being deleted: waiting until it is gone (at most 5 minutes)"
  kubectl wait --for=delete "namespace/$NAMESPACE" --timeout=300s >/dev/null
fi
say "applying the Traefik CRDs and k8s/local/fleet-operator/"
kubectl apply --server-side --force-conflicts -f k8s/local/traefik/00-crds.yaml >/dev/null
kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null
kubectl apply -f k8s/local/fleet-operator/ >/dev/null
say "the dev plan's model: k8s/local/models/, its key in Secret fleet-model-credentials"
kubectl apply -f k8s/local/models/ >/dev/null
mkdir -p "$ROOT/.cluster/dev"
[ -s "$PLANS_FILE" ] || cat >"$PLANS_FILE" <<YAML
# npm run dev's plans (edit while it runs: the handler re-reads this within CREDENTIALS_RELOAD).
default: dev
plans:
  dev: {template: gptme-client-model, poolSize: $POOL_SIZE}
YAML
[ -s "$MODEL_KEY_FILE" ] ||
  (umask 077 && node -e 'process.stdout.write(require("crypto").randomBytes(24).toString("base64url"))' >"$MODEL_KEY_FILE")
kubectl -n "$NAMESPACE" create secret generic fleet-model-credentials \
  --from-file=apiKey="$MODEL_KEY_FILE" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl -n "$NAMESPACE" create configmap fleet-model \
  --from-literal=baseUrl="http://127.0.0.1:$MODEL_PORT/v1" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
quota_counted() {
  [ -n "$(kubectl -n gptme-fleet get resourcequota fleet-instances \
    -o jsonpath='{.status.used.count/clientpods\.gptme\.ai}')" ]
}
say "waiting for the quota controller to count ClientPods (a fresh cluster: up to a minute)"
for _ in $(seq 120); do quota_counted && break || sleep 1; done
quota_counted || say "not counted yet: new instances answer 503 kubernetes_unavailable until it is"

# KWOK pods run no containers, so the handler runs here instead of in its Deployment: the
# fleet-handler Service becomes a name for this machine while dev runs, and is put back after.
say "pointing Service fleet-handler at this machine's handler (until dev stops)"
kubectl -n "$NAMESPACE" scale deployment fleet-handler --replicas=0 >/dev/null
kubectl -n "$NAMESPACE" delete service fleet-handler --ignore-not-found >/dev/null
kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Service
metadata: {name: fleet-handler, namespace: $NAMESPACE}
spec:
  type: ExternalName
  externalName: localhost
  ports: [{name: http, port: $HTTP_PORT}]
YAML
restore() {
  kubectl -n "$NAMESPACE" delete service fleet-handler --ignore-not-found >/dev/null 2>&1 || true
  kubectl apply -f k8s/local/fleet-operator/06-handler.yaml >/dev/null 2>&1 || true
  [ -n "${traefik_pid:-}" ] && kill "$traefik_pid" 2>/dev/null || true
  [ -n "${pods_pid:-}" ] && kill "$pods_pid" 2>/dev/null || true
  [ -n "${webui_pid:-}" ] && kill "$webui_pid" 2>/dev/null || true
  [ -n "${link_pid:-}" ] && kill "$link_pid" 2>/dev/null || true
  [ -n "${model_pid:-}" ] && kill "$model_pid" 2>/dev/null || true
}
trap restore EXIT

say "building"
npm run --silent build
npx tsc -p tsconfig.scripts.json
say "starting Traefik on 127.0.0.1:$TRAEFIK_PORT (first run builds it: 5-15 minutes)"
bash scripts/traefik.sh "$TRAEFIK_PORT" "$NAMESPACE" &
traefik_pid=$!
node .bench/scripts/model-endpoint.js "$MODEL_PORT" fleet-model "$MODEL_KEY_FILE" &
model_pid=$!
say "running a real gptme-server for each instance's pod (KWOK pods run no containers)"
node .bench/scripts/dev-pods.js "$NAMESPACE" "$(bash scripts/gptme-server.sh)" &
pods_pid=$!
GPTME_SERVER_BIN=$(bash scripts/gptme-server.sh)
node .bench/scripts/webui.js "$GPTME_SERVER_BIN" "$WEBUI_PORT" "$PUBLIC_URL" &
webui_pid=$!
# Once the handler answers: a sign-in link for a dev client, as a platform would mint one.
(
  for _ in $(seq 60); do curl -fs "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null 2>&1 && break; sleep 1; done
  url=$(curl -fs -X POST -H "X-API-Key: $DEV_KEY" \
    "http://127.0.0.1:$HTTP_PORT/instances/default/login?wait=30" |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).login.url))') &&
    printf '\n[dev] sign in to gptme as a dev client (valid %s, once): %s\n\n' "$LOGIN_CODE_TTL" "$url" >&2 ||
    say "could not mint a sign-in link (is the handler up?)"
) &
link_pid=$!
say "filling the warm pool (POOL_SIZE=$POOL_SIZE): one reaper pass, as the CronJob would run it"
node dist/reaper/main.js >/dev/null 2>&1 || say "the reaper's pass failed; new instances start cold until a claim refills the pool"

cat >&2 <<MSG

[dev] handler on http://127.0.0.1:$HTTP_PORT, Traefik on http://127.0.0.1:$TRAEFIK_PORT (namespace $NAMESPACE). Try:

  curl -s http://127.0.0.1:$TRAEFIK_PORT/api/v1/my-secret-key-123/instances/default
  # then its gptme-server, through the gateway (endpoint.path and endpoint.token from that answer):
  curl -s -H "Authorization: Bearer <endpoint.token>" http://127.0.0.1:$TRAEFIK_PORT<endpoint.path>/api/v2/conversations

[dev] gptme's web UI:        $WEBUI_URL   (a sign-in link for a dev client follows once the handler is up)
[dev] plans:                 $PLANS_FILE (the plan dev: gptme/fleet-model at http://127.0.0.1:$MODEL_PORT/v1, a stand-in on this machine)
[dev] a new sign-in link:    curl -s -X POST -H 'X-API-Key: $DEV_KEY' http://127.0.0.1:$HTTP_PORT/instances/default/login
[dev] a preview (an app on 127.0.0.1:5173, as if started inside the instance; open the url in a browser):
  curl -s -X POST http://127.0.0.1:$TRAEFIK_PORT/api/v1/my-secret-key-123/instances/default/previews/5173

[dev] the handler directly:  curl -s -H 'X-API-Key: my-secret-key-123' http://127.0.0.1:$HTTP_PORT/instances
[dev] the admin API:         curl -s -H 'Authorization: Bearer $ADMIN_TOKEN' http://127.0.0.1:$HTTP_PORT/admin/pods
[dev] what it made:          kubectl --kubeconfig .cluster/kubeconfig -n $NAMESPACE get cpod,pods
[dev] Ctrl-C stops the handler and Traefik; 'npm run cluster -- down' stops the cluster.

MSG
node dist/handler/main.js | npx --no-install pino-pretty --colorize --translateTime SYS:HH:MM:ss.l
