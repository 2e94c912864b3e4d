"""JupyterHub integration: the spawner's shared runtime, its progress stream and profile form,
and the pieces that let the raworc server run as a JupyterHub service (``hub.service``).

``raworc_spawner.spawner`` imports ``runtime``, ``progress``, ``options`` and ``waiting``;
``service`` belongs to the server side and is imported by the application, never by the
spawner.
"""
