"""ROS 2 layer: message conversions, stamp synchronisation, diagnostics and the fusion node.

``conversions`` and ``sync`` import without rclpy; ``diagnostics`` and ``fusion_node`` need it.
"""
