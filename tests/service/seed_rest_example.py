# The seed's "RESTful API使用" example, verbatim (README.zh.md). The test runs it unchanged
# except for the port of the service under test.
import requests
import time

# 1. 获取可用标签
available_response = requests.get('http://localhost:5000/api/v1/tags/available')
print("可用标签:", available_response.json())

# 2. 触发标签任务
response = requests.post('http://localhost:5000/api/v1/tags/trigger', json={
    "tag_ids": [1, 2, 3],  # 高净值用户、活跃交易者、低风险用户
    "mode": "full"
})

if response.status_code == 202:
    task_id = response.json()['task_id']
    print(f"任务已提交: {task_id}")
    
    # 3. 查询任务状态
    while True:
        status_response = requests.get(f'http://localhost:5000/api/v1/tasks/{task_id}/status')
        status = status_response.json()['status']['status']
        print(f"任务状态: {status}")
        
        if status in ['completed', 'failed']:
            print("任务完成:", status_response.json())
            break
        
        time.sleep(5)
else:
    print("任务提交失败:", response.json())
