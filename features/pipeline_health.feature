Feature: The collector accounts for every event
  Its self-metrics on /metrics count, per component, what it received, sent and discarded:
  once its queues drain, received = sent + discarded everywhere.

  Scenario: Self-metrics balance after the queues drain and after a drained stop
    Given the central stack
    And a gateway collector in front of the stack
    When 200 log lines and 10 checkout traces are pushed to the gateway
    And a log push with an unparsable body is sent to the gateway
    Then within 20 s the gateway's /metrics shows empty queues and received = sent + discarded for every component
    And the gateway's loki writer sent 200 log lines and its tempo writer 40 spans
    When the gateway is stopped, draining its queues
    Then its final self-metrics still show received = sent + discarded for every component
