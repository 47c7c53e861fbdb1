Feature: Dashboards under load
  The people who open Grafana during an incident are the read path's load: each open dashboard
  refreshes every panel's query while the fleet writes. With a few devices writing and a few
  viewers refreshing the shipped dashboards, every panel must still answer, and in time.

  Scenario: with 30 devices writing and 4 viewers, every panel answers within 5000 ms
    Given the central stack
    When loadgen emulates 30 devices for 6 s with 4 Grafana viewers
    Then every panel of the dashboards the viewers opened answered within 5000 ms
    And no dashboard query failed
