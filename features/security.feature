Feature: Only the invited get in, over encrypted connections
  Store agents push over networks the retailer does not fully control. Every hop, from the
  devices to the gateway collector and from the gateway to the stack, is TLS with credentials
  (basic auth with bcrypt hashes in htpasswd files); a push without them, or with wrong ones, is
  refused with 401 and a challenge, counted by reason, and nothing of it is stored.

  Background:
    Given a stack of this scenario serving TLS that requires credentials
    And a gateway collector with TLS and credentials on its receivers, writing to that stack with its own

  Scenario: loadgen to the collector to the stack, TLS and credentials on every hop, loses nothing
    When loadgen emulates 40 devices for 5 s through the gateway over TLS with the agents' credentials
    Then every log, metric and trace sent was acknowledged
    And no canary is lost in logs, metrics or traces

  Scenario: Pushes without credentials or with a wrong password are refused and counted
    When a log push without credentials is sent to the gateway over TLS
    And a log push with a wrong password is sent to the gateway over TLS
    And a log push with the agents' credentials is sent to the gateway over TLS
    Then the gateway refused the first two with 401 and a Basic challenge, and took the third
    And the gateway counts 1 auth failure "missing" and 1 auth failure "bad_credentials" at "loki_in"
    And within 20 s the stack holds the line of the third push and none of the refused ones
