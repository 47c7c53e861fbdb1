Feature: Adding and removing store nodes
  As in the runbook: a node is the node-agent template started with the node's metadata in its
  environment, beside the device's exporter. Location and device names get a per-scenario
  suffix so scenarios can run side by side against one stack.

  Background:
    Given the central stack

  Scenario: A node added from the template reports, and stops reporting once removed
    When I add a node "node1" from the template with
      | NODE_TYPE    | pos     |
      | REGION       | region3 |
      | LOCATION     | store-3 |
      | DEVICE       | pos-3   |
      | BRAND        | brand2  |
      | PROBLEM_MODE | healthy |
    Then within 20 s node "node1" has metrics in Mimir with its labels
    And within 20 s node "node1" has log lines in Loki with its labels
    When I remove node "node1"
    Then within 20 s Mimir gets no new samples from node "node1"
    And within 20 s Loki gets no new log lines from node "node1"

  Scenario: A node in problem mode shows it in its metrics and logs
    When I add a node "srv" from the template with
      | NODE_TYPE    | server   |
      | REGION       | region1  |
      | LOCATION     | store-9  |
      | DEVICE       | server-9 |
      | BRAND        | brand1   |
      | PROBLEM_MODE | problem  |
    Then within 20 s node "srv" has metrics in Mimir with its labels
    And within 20 s Mimir shows node "srv" with less than 20% of its memory available
    And within 20 s node "srv" has log lines in Loki with its labels
    And within 20 s Loki has error lines from node "srv"
