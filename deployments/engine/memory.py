"""Memory figures for /api/model/status: GPU allocated/reserved/peak and host RSS."""

from __future__ import annotations

from typing import Any

import psutil
import torch

MB = 1024 * 1024


def memory_report() -> dict[str, Any]:
    report: dict[str, Any] = {"host_rss_mb": round(psutil.Process().memory_info().rss / MB, 1)}
    if torch.cuda.is_available():
        device = torch.cuda.current_device()
        report["gpu"] = {
            "name": torch.cuda.get_device_name(device),
            "allocated_mb": round(torch.cuda.memory_allocated(device) / MB, 1),
            "reserved_mb": round(torch.cuda.memory_reserved(device) / MB, 1),
            "peak_allocated_mb": round(torch.cuda.max_memory_allocated(device) / MB, 1),
            "total_mb": round(torch.cuda.get_device_properties(device).total_memory / MB, 1),
        }
    return report
