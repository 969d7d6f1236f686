"""Topic-name rules shared by the node and the launch file (plain Python, no rclpy).

image_transport conventions: a transport topic is ``<resolved base topic>/<transport>`` and a
camera's calibration is ``camera_info`` beside its image topic, so a remap of the base topic
carries both along. rviz configurations hold absolute topic names; :func:`namespace_rviz_topics`
rewrites them for a node started in a namespace or with remapped outputs.
"""
from __future__ import annotations

import re

__all__ = ["transport_topic", "camera_info_topic", "resolve_in_namespace", "namespace_rviz_topics"]


def transport_topic(resolved_base: str, transport: str) -> str:
    """``/boson/image_raw`` + ``compressed`` -> ``/boson/image_raw/compressed``; ``raw`` keeps the base."""
    return resolved_base if transport == "raw" else f"{resolved_base.rstrip('/')}/{transport}"


def camera_info_topic(resolved_image_topic: str) -> str:
    """The ``camera_info`` topic beside an image topic: ``/boson/image_raw`` -> ``/boson/camera_info``."""
    parent = resolved_image_topic.rstrip("/").rsplit("/", 1)[0]
    return f"{parent}/camera_info"


def resolve_in_namespace(topic: str, namespace: str) -> str:
    """A topic name as a node in ``namespace`` resolves it (absolute names stay as they are)."""
    if topic.startswith("/"):
        return topic
    prefix = "/" + namespace.strip("/") if namespace.strip("/") else ""
    return f"{prefix}/{topic.lstrip('~/')}"


def namespace_rviz_topics(config_text: str, namespace: str, remappings: dict[str, str]) -> str:
    """Point the topics of an rviz configuration where a node in ``namespace`` with ``remappings``
    publishes them.

    Args:
        config_text: the .rviz YAML text; its ``Value: /topic`` lines name the node's default
            (relative) topics with a leading slash.
        namespace: the node's namespace ("" = root).
        remappings: the node's remapping rules, default relative name -> new name.

    Returns:
        The configuration with only those topic values changed (everything else byte-identical).
    """

    def replace(match: re.Match[str]) -> str:
        relative = match.group(2).lstrip("/")
        target = resolve_in_namespace(remappings.get(relative, relative), namespace)
        return f"{match.group(1)}{target}{match.group(3)}"

    return re.sub(r"^(\s*Value: )(/\S+)(\s*)$", replace, config_text, flags=re.MULTILINE)
