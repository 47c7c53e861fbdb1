Feature: Capacity smoke
  A few hundred store devices for a short run through a collector: nothing lost, sends fast.

  @slow
  Scenario: 300 devices for 10 s lose nothing and send within the latency bound
    Given the central stack
    And a gateway collector in front of the stack
    When loadgen emulates 300 devices for 10 s through the gateway
    Then every log, metric and trace sent was acknowledged
    And no canary is lost in logs, metrics or traces
    And the p99 send latency of every signal is under 1000 ms
