Feature: POS checkout traces reach Tempo
  A POS terminal's checkout is one trace over four services (pos, store-gateway, payment,
  bank), sent over OTLP through a gateway collector.

  Background:
    Given the central stack
    And a gateway collector in front of the stack

  Scenario: A checkout trace is retrievable by its id
    When a "pos" device completes a checkout, its trace sent over OTLP to the gateway
    Then within 20 s Tempo returns the trace by its id with spans from pos, store-gateway, payment and bank

  Scenario: A checkout trace is found by tag search and TraceQL
    When a "pos" device completes a checkout, its trace sent over OTLP to the gateway
    Then within 20 s a tag search for service.name "pos" and the device finds the trace
    And within 20 s a TraceQL search for the device's "pos" spans finds the trace
