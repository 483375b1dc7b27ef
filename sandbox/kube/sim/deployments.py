"""The simulated Deployment controller, the rollout (pkg/controller/deployment/{sync,rolling,progress}.go):
finds or creates the ReplicaSet of the current template and carries revisions over, scales new and old
ReplicaSets within maxSurge/maxUnavailable (or all at once for Recreate), keeps revisionHistoryLimit old
ones, and computes the status kubectl rollout status reads: counts, Available, and Progressing with its
progress deadline. Also the HorizontalPodAutoscaler controller, which keeps the deployment it targets within its bounds.

Close enough to the real controller that kubectl's rollout-status rules give the answers they would give
on a real cluster."""

from __future__ import annotations

import math
from typing import Any

from sandbox.kube import objects
from sandbox.kube.resources import DEPLOYMENTS, HPAS, PODS, REPLICASETS
from sandbox.kube.sim.core import INF, Core
from sandbox.kube.util import as_dict, as_int, as_list, clone, fmt_time, new_uid, parse_time

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
_NOT_COPIED = {"kubectl.kubernetes.io/last-applied-configuration", REVISION, REVISION_HISTORY, DESIRED,
               MAX_REPLICAS, "deprecated.deployment.rollback.to"}


class DeploymentController:
    def __init__(self, core: Core):
        self.core = core
        self.progress_mono: dict[str, float] = {}  # deployment uid -> monotonic time of last progress
        self._template_cache: dict[tuple[str, str], dict[str, Any]] = {}

    def sync_deployments(self, now: float, wall: float) -> float:
        due = INF
        for d in self.core.store.list(DEPLOYMENTS):
            if d["metadata"].get("deletionTimestamp"):
                continue
            due = min(due, self._sync_deployment(d, now, wall))
        return due

    @staticmethod
    def revision(rs: dict[str, Any]) -> int:
        try:
            return int(as_dict(rs["metadata"].get("annotations")).get(REVISION, "0"))
        except ValueError:
            return 0

    def _scale_rs(self, d: dict[str, Any], rs: dict[str, Any], replicas: int, wall: float) -> dict[str, Any]:
        rs = clone(self.core.fresh(REPLICASETS, rs) or rs)
        old = as_int(rs["spec"].get("replicas"), 1)
        surge, _ = objects.resolve_surge_unavailable(d)
        d_replicas = as_int(d["spec"].get("replicas"), 1)
        ann = rs["metadata"].setdefault("annotations", {})
        changed = old != replicas or ann.get(DESIRED) != str(d_replicas) or \
            ann.get(MAX_REPLICAS) != str(d_replicas + surge)
        if not changed:
            return rs
        rs["spec"]["replicas"] = replicas
        ann[DESIRED] = str(d_replicas)
        ann[MAX_REPLICAS] = str(d_replicas + surge)
        stored = self.core.put(REPLICASETS, rs)
        if old != replicas:
            direction = "up" if replicas > old else "down"
            self.core.event(d, "Normal", "ScalingReplicaSet",
                            f"Scaled {direction} replica set {rs['metadata']['name']} to {replicas} from {old}",
                            wall=wall)
        return stored

    def _new_rs_replicas(self, d: dict[str, Any], all_rs: list[dict[str, Any]], new_rs: dict[str, Any] | None) -> int:
        replicas = as_int(d["spec"].get("replicas"), 1)
        if as_dict(d["spec"].get("strategy")).get("type") == "Recreate":
            return replicas
        surge, _ = objects.resolve_surge_unavailable(d)
        current = sum(as_int(r["spec"].get("replicas"), 1) for r in all_rs)
        new_current = as_int(new_rs["spec"].get("replicas"), 1) if new_rs else 0
        max_total = replicas + surge
        if current >= max_total:
            return new_current
        up = min(max_total - current, replicas - new_current)
        return new_current + up

    def _max_unavailable(self, d: dict[str, Any]) -> int:
        replicas = as_int(d["spec"].get("replicas"), 1)
        if as_dict(d["spec"].get("strategy")).get("type") != "RollingUpdate" or replicas == 0:
            return 0
        _, unavailable = objects.resolve_surge_unavailable(d)
        return min(unavailable, replicas)

    @staticmethod
    def _get_cond(status: dict[str, Any], ctype: str) -> dict[str, Any] | None:
        for c in as_list(status.get("conditions")):
            if as_dict(c).get("type") == ctype:
                return as_dict(c)
        return None

    def _set_cond(self, status: dict[str, Any], ctype: str, st: str, reason: str, message: str, wall: float,  # noqa: PLR0917
                  keep_transition: bool = False) -> bool:
        cur = self._get_cond(status, ctype)
        if cur is not None and cur.get("status") == st and cur.get("reason") == reason and not keep_transition:
            return False
        cond = {"type": ctype, "status": st, "lastUpdateTime": fmt_time(wall), "lastTransitionTime": fmt_time(wall),
                "reason": reason, "message": message}
        if cur is not None and cur.get("status") == st:
            cond["lastTransitionTime"] = cur.get("lastTransitionTime", cond["lastTransitionTime"])
        status["conditions"] = [c for c in as_list(status.get("conditions")) if as_dict(c).get("type") != ctype]
        status["conditions"].append(cond)
        return True

    def _sync_deployment(self, d: dict[str, Any], now: float, wall: float) -> float:
        d = clone(d)
        m = d["metadata"]
        ns, uid = m["namespace"], m["uid"]
        spec = as_dict(d.get("spec"))
        status = clone(as_dict(d.get("status")))
        original_status = clone(status)
        original_ann = clone(as_dict(m.get("annotations")))
        paused = bool(spec.get("paused"))
        replicas = as_int(spec.get("replicas"), 1)
        pds = spec.get("progressDeadlineSeconds")

        # checkPausedConditions
        prog = self._get_cond(status, "Progressing")
        if not (prog and prog.get("reason") == "ProgressDeadlineExceeded"):
            paused_cond = prog is not None and prog.get("reason") == "DeploymentPaused"
            if paused and not paused_cond:
                self._set_cond(status, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused", wall)
            elif not paused and paused_cond:
                self._set_cond(status, "Progressing", "Unknown", "DeploymentResumed", "Deployment is resumed", wall)
                self.progress_mono[uid] = now

        rss = self.core.owned(REPLICASETS, ns, uid)
        want = objects.canonical_template(spec.get("template"))
        matching = [r for r in rss if self._canonical(r) == want]
        matching.sort(key=lambda r: parse_time(r["metadata"].get("creationTimestamp")) or 0)
        new_rs = matching[0] if matching else None
        old_rss = [r for r in rss if r is not new_rs]
        max_old = max((self.revision(r) for r in old_rss), default=0)
        new_revision = max_old + 1
        _surge, _ = objects.resolve_surge_unavailable(d)

        if new_rs is not None:
            rs = clone(new_rs)
            ann = rs["metadata"].setdefault("annotations", {})
            changed = False
            for k, v in as_dict(m.get("annotations")).items():
                if k not in _NOT_COPIED and ann.get(k) != v:
                    ann[k] = v
                    changed = True
            old_rev = self.revision(rs)
            if old_rev < new_revision:
                if REVISION in ann:
                    hist = ann.get(REVISION_HISTORY, "")
                    ann[REVISION_HISTORY] = f"{hist},{old_rev}" if hist else str(old_rev)
                ann[REVISION] = str(new_revision)
                changed = True
            if as_int(rs["spec"].get("minReadySeconds")) != as_int(spec.get("minReadySeconds")):
                rs["spec"]["minReadySeconds"] = as_int(spec.get("minReadySeconds"))
                changed = True
            if changed:
                new_rs = self.core.put(REPLICASETS, rs)
            m.setdefault("annotations", {})[REVISION] = as_dict(new_rs["metadata"].get("annotations")).get(
                REVISION, str(new_revision))
            if pds is not None and self._get_cond(status, "Progressing") is None:
                self._set_cond(status, "Progressing", "True", "FoundNewReplicaSet",
                               f'Found new replica set "{new_rs["metadata"]["name"]}"', wall)
                self.progress_mono[uid] = now
        elif not paused and not (as_dict(spec.get("strategy")).get("type") == "Recreate" and (
                any(as_int(r["spec"].get("replicas"), 1) > 0 for r in old_rss)
                or any(self.core.owned(PODS, ns, r["metadata"]["uid"]) for r in old_rss))):
            new_rs = self._create_rs(d, rss, new_revision, wall)
            m.setdefault("annotations", {})[REVISION] = str(new_revision)
            if pds is not None:
                self._set_cond(status, "Progressing", "True", "NewReplicaSetCreated",
                               f'Created new replica set "{new_rs["metadata"]["name"]}"', wall)
                self.progress_mono[uid] = now
            rss = self.core.owned(REPLICASETS, ns, uid)
            old_rss = [r for r in rss if r["metadata"]["uid"] != new_rs["metadata"]["uid"]]

        def refresh() -> None:
            nonlocal new_rs, old_rss, rss
            rss = self.core.owned(REPLICASETS, ns, uid)
            if new_rs is not None:
                nu = new_rs["metadata"]["uid"]
                new_rs = next((r for r in rss if r["metadata"]["uid"] == nu), None)
            old_rss = [r for r in rss if new_rs is None or r["metadata"]["uid"] != new_rs["metadata"]["uid"]]

        active = [r for r in ([new_rs] if new_rs else []) + old_rss if as_int(r["spec"].get("replicas"), 1) > 0]
        scaling_event = any(as_dict(r["metadata"].get("annotations")).get(DESIRED) not in (None, str(replicas))
                            for r in active)
        if paused or (scaling_event and len(active) <= 1):
            target = active[0] if active else (new_rs or (max(old_rss, key=lambda r: parse_time(
                r["metadata"].get("creationTimestamp")) or 0) if old_rss else None))
            if target is not None and (as_int(target["spec"].get("replicas"), 1) != replicas or scaling_event):
                self._scale_rs(d, target, replicas, wall)
                refresh()
        elif as_dict(spec.get("strategy")).get("type") == "Recreate":
            for r in old_rss:
                if as_int(r["spec"].get("replicas"), 1) > 0:
                    self._scale_rs(d, r, 0, wall)
            refresh()
            old_pods = [p for r in old_rss for p in self.core.owned(PODS, ns, r["metadata"]["uid"])]
            if not old_pods and new_rs is not None and as_int(new_rs["spec"].get("replicas"), 1) != replicas:
                self._scale_rs(d, new_rs, replicas, wall)
                refresh()
        elif new_rs is not None:
            # reconcileNewReplicaSet
            nr = as_int(new_rs["spec"].get("replicas"), 1)
            if nr > replicas:
                self._scale_rs(d, new_rs, replicas, wall)
            elif nr < replicas:
                want_new = self._new_rs_replicas(d, rss, new_rs)
                if want_new != nr:
                    self._scale_rs(d, new_rs, want_new, wall)
            refresh()
            self._reconcile_old(d, new_rs, old_rss, wall)
            refresh()

        # cleanupDeployment
        limit = spec.get("revisionHistoryLimit")
        if isinstance(limit, int) and not paused:
            cleanable = [r for r in old_rss if as_int(r["spec"].get("replicas"), 1) == 0
                         and as_int(as_dict(r.get("status")).get("replicas")) == 0
                         and not r["metadata"].get("deletionTimestamp")]
            if len(cleanable) > limit:
                cleanable.sort(key=self.revision)
                for r in cleanable[: len(cleanable) - limit]:
                    self.core.store.remove(REPLICASETS, ns, r["metadata"]["name"])
                refresh()

        # calculateStatus
        all_rs = ([new_rs] if new_rs else []) + old_rss
        available = sum(as_int(as_dict(r.get("status")).get("availableReplicas")) for r in all_rs)
        total_spec = sum(as_int(r["spec"].get("replicas"), 1) for r in all_rs)
        counts = {
            "observedGeneration": m.get("generation", 1),
            "replicas": sum(as_int(as_dict(r.get("status")).get("replicas")) for r in all_rs),
            "updatedReplicas": as_int(as_dict(new_rs.get("status")).get("replicas")) if new_rs else 0,
            "readyReplicas": sum(as_int(as_dict(r.get("status")).get("readyReplicas")) for r in all_rs),
            "availableReplicas": available,
            "unavailableReplicas": max(total_spec - available, 0),
        }
        for k, v in counts.items():
            if v:
                status[k] = v
            else:
                status.pop(k, None)
        if as_int(status.get("collisionCount")) == 0:
            status.pop("collisionCount", None)
        if available >= replicas - self._max_unavailable(d):
            self._set_cond(status, "Available", "True", "MinimumReplicasAvailable",
                           "Deployment has minimum availability.", wall)
        else:
            self._set_cond(status, "Available", "False", "MinimumReplicasUnavailable",
                           "Deployment does not have minimum availability.", wall)

        due = INF
        # syncRolloutStatus
        if pds is not None and not paused:
            cur = self._get_cond(status, "Progressing")
            complete_already = status.get("replicas", 0) == status.get("updatedReplicas", 0) and \
                cur is not None and cur.get("reason") == "NewReplicaSetAvailable"
            rs_name = new_rs["metadata"]["name"] if new_rs else ""
            if not complete_already:
                if (status.get("updatedReplicas", 0) == replicas and status.get("replicas", 0) == replicas
                        and status.get("availableReplicas", 0) == replicas
                        and status.get("observedGeneration", 0) >= m.get("generation", 1)):
                    msg = f'ReplicaSet "{rs_name}" has successfully progressed.' if new_rs else \
                        "Deployment has successfully progressed."
                    self._set_cond(status, "Progressing", "True", "NewReplicaSetAvailable", msg, wall)
                    self.progress_mono[uid] = now
                elif self._progressing(original_status, status):
                    msg = f'ReplicaSet "{rs_name}" is progressing.' if new_rs else "Deployment is progressing."
                    self._set_cond(status, "Progressing", "True", "ReplicaSetUpdated", msg, wall, keep_transition=True)
                    self.progress_mono[uid] = now
                elif cur is not None and cur.get("reason") not in ("NewReplicaSetAvailable",
                                                                   "ProgressDeadlineExceeded"):
                    since = self.progress_mono.get(uid)
                    if since is None:
                        since = now - max(0.0, wall - (parse_time(cur.get("lastUpdateTime")) or wall)) * 1.0
                        self.progress_mono[uid] = since
                    deadline = since + self.core.d(as_int(pds, 600))
                    if now > deadline:
                        msg = f'ReplicaSet "{rs_name}" has timed out progressing.' if new_rs else \
                            f'Deployment "{m["name"]}" has timed out progressing.'
                        self._set_cond(status, "Progressing", "False", "ProgressDeadlineExceeded", msg, wall)
                    else:
                        due = deadline + 0.001

        fresh = self.core.store.get(DEPLOYMENTS, ns, m["name"])
        if fresh is None:
            return due
        if status != original_status or as_dict(m.get("annotations")) != original_ann:
            new = clone(fresh)
            new["status"] = status
            if as_dict(m.get("annotations")) != original_ann:
                new["metadata"]["annotations"] = as_dict(m.get("annotations"))
            self.core.put(DEPLOYMENTS, new)
        return due

    @staticmethod
    def _progressing(old: dict[str, Any], new: dict[str, Any]) -> bool:
        old_old = as_int(old.get("replicas")) - as_int(old.get("updatedReplicas"))
        new_old = as_int(new.get("replicas")) - as_int(new.get("updatedReplicas"))
        return (as_int(new.get("updatedReplicas")) > as_int(old.get("updatedReplicas")) or new_old < old_old
                or as_int(new.get("readyReplicas")) > as_int(old.get("readyReplicas"))
                or as_int(new.get("availableReplicas")) > as_int(old.get("availableReplicas")))

    def _create_rs(self, d: dict[str, Any], rss: list[dict[str, Any]], revision: int, wall: float) -> dict[str, Any]:
        m, spec = d["metadata"], d["spec"]
        status = d.setdefault("status", {})
        collision = as_int(status.get("collisionCount"))
        while True:
            h = objects.template_hash(spec.get("template"), collision)
            name = f"{m['name']}-{h}"
            existing = self.core.store.get(REPLICASETS, m["namespace"], name)
            if existing is None:
                break
            collision += 1
            status["collisionCount"] = collision
        tmpl = clone(spec["template"])
        tmpl.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = h
        sel = clone(spec["selector"])
        sel.setdefault("matchLabels", {})["pod-template-hash"] = h
        surge, _ = objects.resolve_surge_unavailable(d)
        replicas = as_int(spec.get("replicas"), 1)
        ann = {k: v for k, v in as_dict(m.get("annotations")).items() if k not in _NOT_COPIED}
        ann.update({REVISION: str(revision), DESIRED: str(replicas), MAX_REPLICAS: str(replicas + surge)})
        rs: dict[str, Any] = {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": m["namespace"], "uid": new_uid(),
                         "creationTimestamp": fmt_time(wall),
                         "generation": 1, "labels": dict(tmpl["metadata"]["labels"]), "annotations": ann,
                         "ownerReferences": [self.core.owner_ref(DEPLOYMENTS, d)]},
            "spec": {"replicas": 0, "selector": sel, "template": tmpl},
            "status": {"replicas": 0},
        }
        if as_int(spec.get("minReadySeconds")):
            rs["spec"]["minReadySeconds"] = spec["minReadySeconds"]
        rs["spec"]["replicas"] = self._new_rs_replicas(d, rss, None)
        stored = self.core.put(REPLICASETS, rs)
        if rs["spec"]["replicas"] > 0:
            self.core.event(d, "Normal", "ScalingReplicaSet",
                            f"Scaled up replica set {name} to {rs['spec']['replicas']}", wall=wall)
        return stored

    def _reconcile_old(self, d: dict[str, Any], new_rs: dict[str, Any], old_rss: list[dict[str, Any]],
                       wall: float) -> None:
        old_count = sum(as_int(r["spec"].get("replicas"), 1) for r in old_rss)
        if old_count == 0:
            return
        all_rs = [new_rs, *old_rss]
        all_count = sum(as_int(r["spec"].get("replicas"), 1) for r in all_rs)
        replicas = as_int(d["spec"].get("replicas"), 1)
        min_available = replicas - self._max_unavailable(d)
        new_unavailable = as_int(new_rs["spec"].get("replicas"), 1) - as_int(
            as_dict(new_rs.get("status")).get("availableReplicas"))
        max_scaled_down = all_count - min_available - new_unavailable
        if max_scaled_down <= 0:
            return
        old_sorted = sorted(old_rss, key=lambda r: parse_time(r["metadata"].get("creationTimestamp")) or 0)
        # cleanupUnhealthyReplicas
        total = 0
        for r in old_sorted:
            if total >= max_scaled_down:
                break
            spec_r = as_int(r["spec"].get("replicas"), 1)
            avail = as_int(as_dict(r.get("status")).get("availableReplicas"))
            if spec_r in (0, avail):
                continue
            down = min(max_scaled_down - total, spec_r - avail)
            self._scale_rs(d, r, spec_r - down, wall)
            total += down
        # scaleDownOldReplicaSetsForRollingUpdate
        fresh_old = [self.core.fresh(REPLICASETS, r) for r in old_sorted]
        fresh_all = [self.core.fresh(REPLICASETS, new_rs), *fresh_old]
        available = sum(as_int(as_dict(r.get("status")).get("availableReplicas")) for r in fresh_all if r)
        if available <= min_available:
            return
        to_scale = available - min_available
        done = 0
        for r in fresh_old:
            if r is None or done >= to_scale:
                continue
            spec_r = as_int(r["spec"].get("replicas"), 1)
            if spec_r == 0:
                continue
            down = min(spec_r, to_scale - done)
            self._scale_rs(d, r, spec_r - down, wall)
            done += down

    def _canonical(self, obj: dict[str, Any]) -> dict[str, Any]:
        m = obj["metadata"]
        key = (m.get("uid", ""), m.get("resourceVersion", ""))
        hit = self._template_cache.get(key)
        if hit is None:
            hit = objects.canonical_template(as_dict(obj.get("spec")).get("template"))
            if len(self._template_cache) > 2000:
                self._template_cache.clear()
            self._template_cache[key] = hit
        return hit


class HpaController:
    """The HorizontalPodAutoscaler controller (pkg/controller/podautoscaler/horizontal.go, reconcileAutoscaler):
    every sync period it reads the target's scale, and scales it back within minReplicas..maxReplicas (a
    deployment scaled below its minimum comes back), or to what the metric asks for: the sandbox has no
    metrics server, so each HPA keeps the load it was created with (currentReplicas x the CPU utilization in
    its status; none means "at target") spread over the pods there are. Scale-downs wait out the 300 s
    stabilization window; status (currentReplicas, desiredReplicas, currentMetrics, lastScaleTime, the
    AbleToScale / ScalingActive / ScalingLimited conditions) and SuccessfulRescale events as the real one."""

    SYNC_S = 15.0
    STABILIZATION_S = 300.0
    TOLERANCE = 0.1

    def __init__(self, core: Core):
        self.core = core
        self.load: dict[str, float] = {}  # hpa uid -> total CPU, in percent of one pod's request
        self.recommendations: dict[str, list[tuple[float, int]]] = {}  # hpa uid -> [(monotonic, replicas)]
        self.next_sync: dict[str, float] = {}

    def sync_hpas(self, now: float, wall: float) -> float:
        due = INF
        live = set()
        for hpa in self.core.store.list(HPAS):
            uid = hpa["metadata"].get("uid", "")
            live.add(uid)
            due = min(due, self._sync(hpa, uid, now, wall))
        for table in (self.load, self.recommendations, self.next_sync):
            for uid in [u for u in table if u not in live]:
                del table[uid]
        return due

    @staticmethod
    def _cpu_target(hpa: dict[str, Any]) -> int | None:
        for metric in as_list(as_dict(hpa.get("spec")).get("metrics")):
            res = as_dict(as_dict(metric).get("resource"))
            target = as_dict(res.get("target"))
            if res.get("name") == "cpu" and target.get("type") == "Utilization":
                return as_int(target.get("averageUtilization"), 80) or 80
        return None

    def _sync(self, hpa: dict[str, Any], uid: str, now: float, wall: float) -> float:
        ns = hpa["metadata"]["namespace"]
        spec = as_dict(hpa.get("spec"))
        ref = as_dict(spec.get("scaleTargetRef"))
        d = self.core.store.get(DEPLOYMENTS, ns, str(ref.get("name"))) if ref.get("kind") == "Deployment" else None
        if d is None:
            return INF
        status = clone(as_dict(hpa.get("status")))
        original = clone(status)
        spec_replicas = as_int(as_dict(d.get("spec")).get("replicas"), 1)
        status_replicas = as_int(as_dict(d.get("status")).get("replicas"))
        lo, hi = as_int(spec.get("minReplicas"), 1) or 1, as_int(spec.get("maxReplicas"), 1)
        target = self._cpu_target(hpa)
        if uid not in self.load:
            util = None
            for metric in as_list(status.get("currentMetrics")):
                current = as_dict(as_dict(as_dict(metric).get("resource")).get("current"))
                if "averageUtilization" in current:
                    util = as_int(current.get("averageUtilization"))
            pods = as_int(status.get("currentReplicas")) or status_replicas or spec_replicas
            self.load[uid] = float((util if util is not None else (target or 0)) * pods)
        conds = {as_dict(c).get("type"): as_dict(c) for c in as_list(status.get("conditions"))}

        def cond(ctype: str, ok: bool, reason: str, message: str) -> None:
            old = conds.get(ctype) or {}
            value = "True" if ok else "False"
            since = old.get("lastTransitionTime") if old.get("status") == value else fmt_time(wall)
            conds[ctype] = {"type": ctype, "status": value, "lastTransitionTime": since or fmt_time(wall),
                            "reason": reason, "message": message}

        desired, reason = spec_replicas, ""
        if spec_replicas == 0 and lo != 0:
            desired = 0
            cond("ScalingActive", False, "ScalingDisabled",
                 "scaling is disabled since the replica count of the target is zero")
        elif spec_replicas > hi:
            desired, reason = hi, "Current number of replicas above Spec.MaxReplicas"
        elif spec_replicas < lo:
            desired, reason = lo, "Current number of replicas below Spec.MinReplicas"
        else:
            proposal = spec_replicas
            pods = spec_replicas  # the load spreads over the pods asked for (the real one skips unready pods)
            if target is not None and pods:
                ratio = self.load[uid] / pods / target
                if abs(ratio - 1.0) > self.TOLERANCE:
                    proposal = max(1, math.ceil(self.load[uid] / target))
                cond("ScalingActive", True, "ValidMetricFound",
                     "the HPA was able to successfully calculate a replica count from cpu resource utilization "
                     "(percentage of request)")
            history = [(t, r) for t, r in self.recommendations.get(uid, [])
                       if now - t < self.core.d(self.STABILIZATION_S)]
            history.append((now, proposal))
            self.recommendations[uid] = history
            stabilized = max(r for _t, r in history) if proposal < spec_replicas else proposal
            if stabilized < lo:
                desired = lo
                cond("ScalingLimited", True, "TooFewReplicas",
                     "the desired replica count is less than the minimum replica count")
            elif stabilized > hi:
                desired = hi
                cond("ScalingLimited", True, "TooManyReplicas",
                     "the desired replica count is more than the maximum replica count")
            else:
                desired = stabilized
                cond("ScalingLimited", False, "DesiredWithinRange", "the desired count is within the acceptable range")
            if desired != spec_replicas:
                reason = ("cpu resource utilization (percentage of request) above target" if desired > spec_replicas
                          else "All metrics below target")
            elif stabilized != proposal:
                cond("AbleToScale", True, "ScaleDownStabilized",
                     "recent recommendations were higher than current one, applying the highest recent "
                     "recommendation")
            else:
                cond("AbleToScale", True, "ReadyForNewScale", "recommended size matches current size")
        if reason and desired != spec_replicas:
            new_d = clone(d)
            new_d["spec"]["replicas"] = desired
            self.core.api.update(DEPLOYMENTS, ns, d["metadata"]["name"], new_d)
            status["lastScaleTime"] = fmt_time(wall)
            cond("AbleToScale", True, "SucceededRescale",
                 f"the HPA controller was able to update the target scale to {desired}")
            self.core.event(hpa, "Normal", "SuccessfulRescale", f"New size: {desired}; reason: {reason}",
                            component="horizontal-pod-autoscaler", wall=wall)
        status["currentReplicas"] = status_replicas
        status["desiredReplicas"] = desired
        if target is not None and status_replicas:
            util = round(self.load[uid] / status_replicas)
            if not as_list(status.get("currentMetrics")):  # what the metrics server would report
                millis = _cpu_request_millis(d)
                fresh_metric: dict[str, Any] = {"averageUtilization": util}
                if millis:
                    fresh_metric["averageValue"] = f"{millis * util // 100}m"
                status["currentMetrics"] = [{"type": "Resource", "resource": {"name": "cpu",
                                                                              "current": fresh_metric}}]
            for metric in as_list(status.get("currentMetrics")):
                current = as_dict(as_dict(as_dict(metric).get("resource")).get("current"))
                before = as_int(current.get("averageUtilization"))
                if "averageUtilization" in current and before != util:
                    current["averageUtilization"] = util
                    value = str(current.get("averageValue", ""))
                    if before and value.endswith("m") and value[:-1].isdigit():
                        current["averageValue"] = f"{int(value[:-1]) * util // before}m"
        order = ("AbleToScale", "ScalingActive", "ScalingLimited")
        status["conditions"] = [conds[t] for t in order if t in conds] + [
            c for t, c in conds.items() if t not in order]
        if status != original:
            fresh = self.core.fresh(HPAS, hpa)
            if fresh is not None:
                new = clone(fresh)
                new["status"] = status
                self.core.put(HPAS, new)
        return now + self.core.d(self.SYNC_S)


def _cpu_request_millis(d: dict[str, Any]) -> int:
    """The CPU request of the deployment's pods, in millicores (0 when not set)."""
    total = 0
    pod_spec = as_dict(as_dict(as_dict(d.get("spec")).get("template")).get("spec"))
    for c in as_list(pod_spec.get("containers")):
        cpu = str(as_dict(as_dict(as_dict(c).get("resources")).get("requests")).get("cpu") or "")
        try:
            total += int(cpu[:-1]) if cpu.endswith("m") else int(float(cpu) * 1000) if cpu else 0
        except ValueError:
            continue
    return total
