Feature: Logs lead to traces
  A POS checkout log line carries the id of its trace: an operator reading the line in Loki
  finds the whole checkout in Tempo.

  Scenario: The trace id in a POS checkout log line finds its trace
    Given the central stack
    And a gateway collector in front of the stack
    When a "pos" device completes a checkout, its trace sent over OTLP and its log line over Loki push to the gateway
    Then within 20 s Loki has the device's checkout line
    And within 20 s the trace_id of that line finds the trace in Tempo, its root span "checkout" from the same device
