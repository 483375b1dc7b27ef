"""The simulated Job controller (pkg/controller/job): runs `parallelism` pods at a time until
`completions` succeeded, with the exponential back-off between failed pods, and finishes the Job as
Complete, or Failed on backoffLimit or activeDeadlineSeconds; finished Jobs go after
ttlSecondsAfterFinished. Whether a Job's pod succeeds is up to the kubelet (pods.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sandbox.kube.resources import JOBS, PODS
from sandbox.kube.sim.core import INF, Core
from sandbox.kube.util import as_dict, as_int, as_list, clone, fmt_time, parse_time


@dataclass
class JobSim:
    """What the controller remembers of a Job between passes: which pods succeeded and failed, when the next
    pod may be created (the back-off), and when it finished (for the TTL)."""

    succeeded: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    next_create: float = 0.0
    finished_at: float | None = None


class JobController:
    def __init__(self, core: Core):
        self.core = core
        self.sims: dict[str, JobSim] = {}  # by job uid

    def sync_jobs(self, now: float, wall: float) -> float:
        due = INF
        for job in self.core.store.list(JOBS):
            if job["metadata"].get("deletionTimestamp"):
                continue
            due = min(due, self._sync_job(job, now, wall))
        live = {j["metadata"].get("uid") for j in self.core.store.list(JOBS)}
        for uid in [u for u in self.sims if u not in live]:
            del self.sims[uid]
        return due

    def _sync_job(self, job: dict[str, Any], now: float, wall: float) -> float:
        m = job["metadata"]
        ns, uid = m["namespace"], m["uid"]
        spec = as_dict(job.get("spec"))
        status = clone(as_dict(job.get("status")))
        original = clone(status)
        sim = self.sims.setdefault(uid, JobSim())
        conds = {as_dict(c).get("type"): as_dict(c) for c in as_list(status.get("conditions"))}
        finished = any(conds.get(t, {}).get("status") == "True" for t in ("Complete", "Failed"))
        if finished:
            ttl = spec.get("ttlSecondsAfterFinished")
            if isinstance(ttl, int):
                if sim.finished_at is None:
                    sim.finished_at = now
                at = sim.finished_at + self.core.d(ttl)
                if now >= at:
                    self.core.store.remove(JOBS, ns, m["name"])
                    return INF
                return at
            return INF
        if spec.get("suspend"):
            return INF
        pods = self.core.owned(PODS, ns, uid)
        for p in pods:
            phase = as_dict(p.get("status")).get("phase")
            if phase == "Succeeded":
                sim.succeeded.add(p["metadata"]["uid"])
            elif phase == "Failed" and p["metadata"]["uid"] not in sim.failed:
                sim.failed.add(p["metadata"]["uid"])
                sim.next_create = now + self.core.d(min(10 * 2 ** (len(sim.failed) - 1), 360))
        active = [p for p in pods if as_dict(p.get("status")).get("phase") not in ("Succeeded", "Failed")
                  and not p["metadata"].get("deletionTimestamp")]
        restarts = 0
        if as_dict(as_dict(spec.get("template")).get("spec")).get("restartPolicy") == "OnFailure":
            for p in active:
                restarts += sum(as_int(as_dict(c).get("restartCount"))
                                for c in as_list(as_dict(p.get("status")).get("containerStatuses")))
        failed = len(sim.failed) + restarts
        completions = as_int(spec.get("completions"), 1)
        parallelism = as_int(spec.get("parallelism"), 1)
        backoff_limit = as_int(spec.get("backoffLimit"), 6)
        if "startTime" not in status:
            status["startTime"] = fmt_time(wall)
        start = parse_time(status["startTime"]) or wall
        ads = spec.get("activeDeadlineSeconds")
        due = INF

        def finish(ctype: str, reason: str, message: str, etype: str, ereason: str, emsg: str) -> None:  # noqa: PLR0917
            interim = "SuccessCriteriaMet" if ctype == "Complete" else "FailureTarget"
            ts = fmt_time(wall)
            status["conditions"] = [c for c in as_list(status.get("conditions"))
                                    if as_dict(c).get("type") not in (interim, ctype)]
            for t in (interim, ctype):
                status["conditions"].append({"type": t, "status": "True", "lastProbeTime": ts,
                                             "lastTransitionTime": ts, "reason": reason, "message": message})
            if ctype == "Complete":
                status["completionTime"] = ts
            self.core.event(job, etype, ereason, emsg, wall=wall)
            sim.finished_at = now
            for p in active:
                self.core.api.delete(PODS, ns, p["metadata"]["name"])

        if len(sim.succeeded) >= completions:
            finish("Complete", "CompletionsReached", "Reached expected number of succeeded pods", "Normal",
                   "Completed", "Job completed")
            active = []
        elif failed > backoff_limit:
            finish("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit", "Warning",
                   "BackoffLimitExceeded", "Job has reached the specified backoff limit")
            active = []
        elif isinstance(ads, int) and wall - start > self.core.d(ads):
            finish("Failed", "DeadlineExceeded", "Job was active longer than specified deadline", "Warning",
                   "DeadlineExceeded", "Job was active longer than specified deadline")
            active = []
        else:
            if isinstance(ads, int):
                due = now + max(0.0, start + self.core.d(ads) - wall) + 0.001
            need = min(parallelism, completions - len(sim.succeeded)) - len(active)
            if need > 0:
                if now >= sim.next_create:
                    for _ in range(need):
                        pod = self.core.new_pod(JOBS, job, wall)
                        self.core.put(PODS, pod)
                        self.core.event(job, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}",
                                        wall=wall)
                    active = [p for p in self.core.owned(PODS, ns, uid)
                              if as_dict(p.get("status")).get("phase") not in ("Succeeded", "Failed")
                              and not p["metadata"].get("deletionTimestamp")]
                else:
                    due = min(due, sim.next_create)
        counts = {"active": len(active), "succeeded": len(sim.succeeded), "failed": failed}
        for k, v in counts.items():
            if v:
                status[k] = v
            else:
                status.pop(k, None)
        status["ready"] = sum(1 for p in active if self.core.pod_ready(p))
        status["terminating"] = sum(1 for p in self.core.owned(PODS, ns, uid) if p["metadata"].get("deletionTimestamp"))
        status["uncountedTerminatedPods"] = {}
        if status != original:
            fresh = self.core.fresh(JOBS, job)
            if fresh is not None:
                new = clone(fresh)
                new["status"] = status
                self.core.put(JOBS, new)
        return due
