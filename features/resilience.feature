Feature: The pipeline rides out backend failures and refuses bad input
  A backend that fails for a while loses nothing once it recovers: the collector retries, with
  no bound on the count by default, for as long as its queue has room (the gateway backs off
  100 ms to 1 s, so ten retries would take at most 8.4 s: the outage outlasts them).
  Input that cannot be parsed is refused with 400 and a reason, and counted.

  Background:
    Given the central stack

  Scenario: Loki answers 500 for a while, then recovers: nothing is lost
    Given a fault-injecting proxy in front of Loki
    And a gateway collector writing to Loki through the proxy
    And the proxy answers the next 3 Loki pushes with HTTP 500
    When 50 log lines of a new stream are pushed to the gateway
    Then within 20 s Loki returns all 50 lines of the stream, each exactly once
    And the proxy injected 3 failures
    And the gateway's loki writer counted at least 3 retries

  Scenario: Loki is down for longer than ten retries take: nothing acknowledged is lost
    Given a fault-injecting proxy in front of Loki
    And a gateway collector writing to Loki through the proxy
    And the proxy answers every Loki push with HTTP 503 for the next 10 s
    When 50 log lines of a new stream are pushed to the gateway
    Then once the outage is over, Loki returns all 50 lines of the stream, each exactly once
    And the proxy injected at least 11 failures
    And the gateway's loki writer discarded nothing

  Scenario: A gateway with a disk buffer is killed while Loki is down: nothing acknowledged is lost
    Given a fault-injecting proxy in front of Loki
    And a gateway collector writing to Loki through the proxy with a disk buffer
    And the proxy answers every Loki push with HTTP 503 for the next 5 s
    When 50 log lines of a new stream are pushed to the gateway
    And the gateway is killed (kill -9) and started again
    Then once the outage is over, Loki returns all 50 lines of the stream, each exactly once

  Scenario: A malformed push is refused with a reason and counted
    Given a gateway collector in front of the stack
    When a log push with an unparsable body is sent to the gateway
    Then the gateway answered 400 with a reason
    And within 20 s the gateway counts 1 more discarded item with reason "decode_error" at "loki_in"
