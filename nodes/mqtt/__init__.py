"""MQTT: predictions and actuator commands out to a broker (``type = "mqtt"``), teaching commands in
(``type = "teach"``).

- ``broker``: how to reach a broker (settings, password, TLS, a client, errors in words)
- ``rules``: actuator rules, a pure debounce over prediction records
- ``publisher``: the buffered publisher (bounded buffer, reconnects with backoff, status and last will)
- ``sink``: the MQTT sink node
- ``commands``: the control commands and their validation, free of MQTT
- ``teach``: the teach source node, MQTT front end of the commands
"""
