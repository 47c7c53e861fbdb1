Feature: The central stack is ready
  Before any store reports, an operator checks that the backends answer on their readiness
  endpoints and that Grafana is healthy.

  Scenario: Loki, Mimir and Tempo report ready
    Given the central stack
    Then Loki answers 200 on /ready
    And Mimir answers 200 on /ready
    And Tempo answers 200 on /ready

  @grafana
  Scenario: Grafana is healthy
    Given the central stack
    Then Grafana reports its database ok on /api/health
