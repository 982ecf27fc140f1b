#!/usr/bin/env bash
# Deploy the exchange to Kubernetes, the deployment guide's `./deploy.sh --config=conservative --enable-migration=false`:
#   ./deploy.sh --config=<preset> --enable-migration=<true|false> [--image=REPOSITORY:TAG]
#       [--layout=production|blue|green] [--namespace=trading] [--timeout=600s] [--dry-run | --render]
# Applies k8s/base (configuration, Services, workers, Celery, policies) with every image set to --image, the
# preset and the master switch of migrations in the ConfigMap (MIGRATION_PRESET, ADAPTIVE_ORDER_BOOKS_ENABLED),
# runs the prepare Job (migrations, admin user) and waits for it, applies the web of --layout, creates the web's
# Service (k8s/service) only if it is missing (its selector is the blue-green switch: a redeploy keeps it), waits
# for every rollout, then runs /app/health-check in the web. Presets: conservative, production, aggressive, testing,
# high_volume. The Secret trading-secrets must exist (docs/production.md). --dry-run prints every kubectl call;
# --render prints the manifests it would apply.
set -euo pipefail
source "$(dirname "$0")/scripts/_operator_api.sh"
source "$(dirname "$0")/scripts/_kubectl.sh"

CONFIG="" ENABLE="" IMAGE="your-registry/adaptive-trading:v2.0.0" LAYOUT=production TIMEOUT=600
for argument in "$@"; do
    case "$argument" in
        --config=*) CONFIG="${argument#*=}" ;;
        --enable-migration=*) ENABLE="${argument#*=}" ;;
        --image=*) IMAGE="${argument#*=}" ;;
        --layout=*) LAYOUT="${argument#*=}" ;;
        --namespace=*) NAMESPACE="${argument#*=}" ;;
        --timeout=*) TIMEOUT="$(seconds_of "${argument#*=}" --timeout)" ;;
        --dry-run) DRY_RUN=yes ;;
        --render) DRY_RUN=render ;;
        -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown flag $argument (see --help)" ;;
    esac
done
case "$CONFIG" in
    conservative|production|aggressive|testing|high_volume) ;;
    "") die "--config=<preset> is required: conservative, production, aggressive, testing or high_volume" ;;
    *) die "--config=$CONFIG is not a preset: conservative, production, aggressive, testing or high_volume" ;;
esac
case "$ENABLE" in
    true|false) ;;
    *) die "--enable-migration=${ENABLE:-<missing>} must be true or false" ;;
esac
case "$LAYOUT" in
    production|blue|green) ;;
    *) die "--layout=$LAYOUT must be production, blue or green (a canary is scripts/canary-rollout.sh)" ;;
esac
[[ "$IMAGE" =~ ^[a-z0-9./:_-]+$ ]] || die "--image=$IMAGE is not an image reference like registry/name:tag"
need_kubectl

[ "$DRY_RUN" = render ] || echo "deploying $IMAGE to namespace $NAMESPACE: preset $CONFIG, migrations $( [ "$ENABLE" = true ] && echo enabled || echo disabled), web layout $LAYOUT"
kube get secret trading-secrets -o name || die "the Secret trading-secrets is missing in $NAMESPACE (docs/production.md)"
# A Job's pod template cannot change: the previous release's run goes first.
kube delete job prepare-exchange --ignore-not-found
apply_rendered k8s/base "$IMAGE" "s#^  MIGRATION_PRESET: .*#  MIGRATION_PRESET: $CONFIG#" \
    "s#^  ADAPTIVE_ORDER_BOOKS_ENABLED: .*#  ADAPTIVE_ORDER_BOOKS_ENABLED: \"$ENABLE\"#"
kube wait --for=condition=complete job/prepare-exchange --timeout="${TIMEOUT}s"
apply_rendered "k8s/web/$LAYOUT" "$IMAGE"
# The web's Service only when it is missing: its selector is the blue-green switch, which a redeploy must keep.
if [ "$DRY_RUN" = render ] || ! kube get service trading-service -o name; then
    apply_rendered k8s/service "$IMAGE"
fi
web=trading-service
[ "$LAYOUT" = production ] || web="trading-service-$LAYOUT"
# The processes read the ConfigMap when they start: those already running restart to take the new one.
for workload in "deployment/$web" deployment/trading-websockets statefulset/matching-worker deployment/celery-worker \
        deployment/celery-beat; do
    kube rollout restart "$workload"
    kube rollout status "$workload" --timeout="${TIMEOUT}s"
done
kube exec "deployment/$web" -c trading-container -- /app/health-check
[ "$DRY_RUN" = render ] || echo "deployed: $web serves; switch the Service to it with" \
     "kubectl -n $NAMESPACE patch service trading-service -p '{\"spec\":{\"selector\":{\"version\":\"$( [ "$LAYOUT" = production ] && echo stable || echo "$LAYOUT")\"}}}'"
