"""What an application ships: the Relay client, the `Application` workflow and its saved progress."""
