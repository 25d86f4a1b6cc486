"""Namespace <-> preopen sync: show namespace directories to a WASI guest as host dirs.

WASI preopens are host directories, so each preopened namespace subtree is *staged*:
copied into a staging directory (under ``/dev/shm`` when writable, else the temp dir),
preopened, and after the run every change the guest made is written back through the
namespace (adds before deletions, so a rename never loses content). A change the
namespace refuses is reported in ``Changes.refused`` and undone by the next sync; a
subtree preopened read-only is never looked at after the run. When the guest and the host
change one file during the same run, the guest's version is written last and wins.

The basic algorithm, one module each:

* ``plan``: what to preopen (staged subtrees, host dirs shown directly), cached per
  namespace until its mount tables or the preopen spec change;
* ``sync_in``: bring each staged copy in line with the namespace;
* ``write_back``: after the run, the guest's changes into the namespace (``changelog``:
  what is reported);
* ``staging``: ``NamespaceStaging``, the order of a run: plan -> detect -> apply -> record;
* ``lock``: one lock per namespace; ``hostio``: every host access below a staging dir.

Kept per subtree between runs, so a later run copies only what changed on either side:

* ``manifest``: the staged files' stats and digests, and the racy-timestamp rule that
  says when a stat can be trusted;
* ``detect``: "what changed?", answered by a full walk or scan, the change journal
  (``journal``: only the paths a service names) or inotify (only the entries the guest
  touched);
* ``steady``: the last run's preopens, reused while every journal says nothing changed;
* ``direct``: a WorkspaceFs mount preopened as it is, its changes reported by a stat walk;
* ``guest_root``: the staged subtrees under one preopen at ``/`` (``oanix.wasi.rootview``),
  so ``ls /`` lists the namespace's top level; what the guest does to the root itself is
  undone and reported.

Security: every host access below a staging directory is resolved from the descriptor the
host holds of it, component by component with no-follow opens (``hostio``,
``oanix._beneath``), and happens only while the guest is parked or gone; links or special
files the guest makes are reported refused and removed, never followed. A tree too deep
for host paths (``HOST_PATH_MAX``) is refused with ``NameTooLong`` before the guest
starts. Only the sync and the guest write in a staging directory: with inotify, a staged
copy changed between runs by anyone else is copied afresh (without inotify, only a
staging directory removed altogether is noticed).

Locking: runs over one namespace hold its lock (``lock.namespace_lock``) from sync-in to
write-back: serialised per namespace, parallel across namespaces.
"""

from .hostio import HOST_PATH_MAX, staging_root
from .lock import NamespaceLock, namespace_lock
from .manifest import PreparedPreopen
from .plan import Staged
from .staging import DEFAULT_SCAN_LIMIT, NamespaceStaging

__all__ = ["DEFAULT_SCAN_LIMIT", "HOST_PATH_MAX", "NamespaceLock", "NamespaceStaging",
           "PreparedPreopen", "Staged", "namespace_lock", "staging_root"]
