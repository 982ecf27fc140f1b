# Shared by the deployment scripts: kubectl calls that --dry-run prints instead of making. Sourced, not run.
# NAMESPACE (--namespace=, default $TRADING_NAMESPACE or trading); DRY_RUN=yes prints each call, DRY_RUN=render
# only prints the manifests that would be applied.

NAMESPACE="${TRADING_NAMESPACE:-trading}"
DRY_RUN=no
REPOSITORY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# kube ARGS...: kubectl -n $NAMESPACE ARGS, or its printed form under --dry-run (nothing under --render).
kube() {
    if [ "$DRY_RUN" = render ]; then
        return 0
    elif [ "$DRY_RUN" = yes ]; then
        echo "kubectl -n $NAMESPACE $*"
    else
        kubectl -n "$NAMESPACE" "$@"
    fi
}

# apply_rendered DIR IMAGE [SED-EXPRESSION...]: the kustomization's render, its image set to IMAGE (and the
# given edits made), applied.
apply_rendered() {
    local directory="$1" image="$2"
    local edits=(-e "s#image: your-registry/adaptive-trading:v2.0.0#image: $image#")
    shift 2
    for expression in "$@"; do edits+=(-e "$expression"); done
    if [ "$DRY_RUN" = yes ]; then
        echo "kubectl kustomize $directory | sed $(printf '%q ' "${edits[@]}")| kubectl -n $NAMESPACE apply -f -"
    elif [ "$DRY_RUN" = render ]; then
        echo "---"
        kubectl kustomize "$REPOSITORY_ROOT/$directory" | sed "${edits[@]}"
    else
        kubectl kustomize "$REPOSITORY_ROOT/$directory" | sed "${edits[@]}" | kubectl -n "$NAMESPACE" apply -f -
    fi
}

need_kubectl() {
    [ "$DRY_RUN" = yes ] || command -v kubectl >/dev/null || die "kubectl not found (use --dry-run to see the calls)"
}
