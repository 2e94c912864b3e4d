"""Reading Kubernetes protobuf request bodies: the wire format, message tables and a decoder.

kubectl's typed commands (``create namespace``, ``create secret``, ``auth can-i``,
``create token`` …) send ``application/vnd.kubernetes.protobuf`` bodies. kubesim decodes the
kinds it has tables for into the dicts the same objects would be as JSON; it never writes
protobuf (clients accept JSON answers).
"""

from .decode import KINDS, MAGIC, UnsupportedKind, decode_object
from .wire import WireError

__all__ = ["KINDS", "MAGIC", "UnsupportedKind", "WireError", "decode_object"]
